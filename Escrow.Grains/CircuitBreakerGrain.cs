using System.Collections.Immutable;
using Escrow.Grains.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Escrow.Grains;

[GenerateSerializer, Alias("escrow.breaker-state.v1")]
public sealed record CircuitBreakerState
{
    [Id(0)] public DateTimeOffset? WindowStartedAt { get; init; }

    /// <summary>
    /// Written by earlier versions: the window's permits by escrow, which made every write as large as the window
    /// (a 100 000-escrow run queued refunds behind megabyte writes). Only read now: on activation such a window
    /// becomes counters (<see cref="WithCountersCarriedOver"/>) and the permits are dropped.
    /// </summary>
    [Id(1)] public ImmutableDictionary<Guid, long> Permits { get; init; } = ImmutableDictionary<Guid, long>.Empty;
    [Id(2)] public bool Tripped { get; init; }
    [Id(3)] public int Trips { get; init; }

    /// <summary>Refunds permitted in the window.</summary>
    [Id(4)] public int Granted { get; init; }

    /// <summary>Their amount, in minor units.</summary>
    [Id(5)] public long GrantedMinor { get; init; }

    /// <summary>A state an earlier version wrote with per-escrow permits, as counters (and without the permits).</summary>
    public CircuitBreakerState WithCountersCarriedOver() => Permits.IsEmpty ? this
        : this with { Granted = Math.Max(Granted, Permits.Count), GrantedMinor = Math.Max(GrantedMinor, Permits.Values.Sum()), Permits = ImmutableDictionary<Guid, long>.Empty };

    /// <summary>A new, closed window starting at <paramref name="now"/>; the trip count is kept.</summary>
    public CircuitBreakerState NewWindow(DateTimeOffset now) => this with { WindowStartedAt = now, Granted = 0, GrantedMinor = 0, Tripped = false };
}

/// <summary>
/// Hands out refund permits: at most RefundsPerWindowMax refunds and RefundAmountPerWindowMaxMinor per window.
/// A refusal trips the breaker until the window ends or an operator resets it, with one alert per trip. It never
/// blocks releases. A refund larger than the whole window cap needs an operator's approval instead.
/// The stored state is a few counters, whatever the caps: each permit is one small durable write. An escrow that
/// asks again (its answer was lost) is recognised by this activation and not counted twice; after the breaker's
/// activation is replaced it would be counted again, which can only make the cap stricter, never looser.
/// </summary>
[GrainType("circuit-breaker")]
public sealed partial class CircuitBreakerGrain(
    [PersistentState("circuit-breaker", EscrowStorage.ProviderName)] IPersistentState<CircuitBreakerState> state,
    TimeProvider clock,
    IEscrowStore store,
    IOptions<CircuitBreakerOptions> options,
    ILogger<CircuitBreakerGrain> logger) : Grain, ICircuitBreakerGrain
{
    // The escrows permitted in the window _grantedWindow, in memory only (see the class summary).
    private readonly HashSet<Guid> _granted = [];
    private DateTimeOffset? _grantedWindow;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var s = state.State;
        if (!s.Permits.IsEmpty)
        {
            // A window written by an earlier version: its permits become counters (and are known as granted).
            state.State = s.WithCountersCarriedOver();
            _granted.UnionWith(s.Permits.Keys);
            _grantedWindow = s.WindowStartedAt;
        }
        return Task.CompletedTask;
    }

    public async Task<RefundPermit> RequestPermitAsync(Guid escrowId, long amountMinor)
    {
        var o = options.Value;
        var now = clock.GetUtcNow();
        var s = CurrentWindow(now);
        if (_grantedWindow != s.WindowStartedAt)
        {
            _granted.Clear();
            _grantedWindow = s.WindowStartedAt;
        }
        if (_granted.Contains(escrowId))
        {
            return RefundPermit.Granted;
        }
        if (amountMinor > o.RefundAmountPerWindowMaxMinor)
        {
            return RefundPermit.NeedsApproval;
        }
        if (s.Tripped)
        {
            await SaveIfChangedAsync(s);
            EscrowTelemetry.RefundsDenied.Add(1);
            return RefundPermit.Denied;
        }
        if (s.Granted + 1 > o.RefundsPerWindowMax || s.GrantedMinor + amountMinor > o.RefundAmountPerWindowMaxMinor)
        {
            var tripped = s with { Tripped = true, Trips = s.Trips + 1 };
            // The alert first (its dedupe key makes it idempotent), then the trip: if either fails, the next request
            // trips again and the alert is raised once, instead of a tripped breaker that never alerted.
            await store.RaiseAlertAsync(new NewAlert("circuit_breaker_tripped", "critical", null,
                $"circuit_breaker_tripped/{tripped.Trips}/{s.WindowStartedAt:O}",
                $"{s.Granted} refunds ({s.GrantedMinor} minor units) in the window started {s.WindowStartedAt:O}; further refunds wait in refund_pending until the window ends or POST /v1/admin/circuit-breaker/reset.",
                now));
            await WriteAsync(tripped);
            LogTripped(s.Granted, s.GrantedMinor);
            EscrowTelemetry.BreakerTrips.Add(1);
            EscrowTelemetry.RefundsDenied.Add(1);
            return RefundPermit.Denied;
        }
        await WriteAsync(s with { Granted = s.Granted + 1, GrantedMinor = s.GrantedMinor + amountMinor });
        _granted.Add(escrowId);
        return RefundPermit.Granted;
    }

    private Task WriteAsync(CircuitBreakerState next) => state.WriteOrForgetAsync(next, this);

    public Task<CircuitBreakerView> GetAsync() => Task.FromResult(View(CurrentWindow(clock.GetUtcNow())));

    public async Task<CircuitBreakerView> ResetAsync(string resetBy)
    {
        await WriteAsync(state.State.NewWindow(clock.GetUtcNow()));
        LogReset(resetBy);
        return View(state.State);
    }

    /// <summary>The state as of now: a window that has ended is replaced by a fresh one (closing the breaker).</summary>
    private CircuitBreakerState CurrentWindow(DateTimeOffset now)
    {
        var s = state.State;
        return s.WindowStartedAt is { } start && now < start + options.Value.Window
            ? s
            : s.NewWindow(now);
    }

    private async Task SaveIfChangedAsync(CircuitBreakerState s)
    {
        if (!ReferenceEquals(s, state.State))
        {
            await WriteAsync(s);
        }
    }

    private CircuitBreakerView View(CircuitBreakerState s)
    {
        var o = options.Value;
        return new CircuitBreakerView(s.Tripped ? "open" : "closed", s.WindowStartedAt, s.Granted, s.GrantedMinor,
            o.RefundsPerWindowMax, o.RefundAmountPerWindowMaxMinor, o.Window, s.Trips);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Circuit breaker tripped after {Refunds} refunds ({AmountMinor} minor units) in the window")]
    private partial void LogTripped(int refunds, long amountMinor);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Circuit breaker reset by {ResetBy}")]
    private partial void LogReset(string resetBy);
}
