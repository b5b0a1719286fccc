using System.Collections.Immutable;
using Escrow.Grains.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Escrow.Grains;

[GenerateSerializer, Alias("escrow.breaker-state.v1")]
public sealed record CircuitBreakerState
{
    [Id(0)] public DateTimeOffset? WindowStartedAt { get; init; }
    [Id(1)] public ImmutableDictionary<Guid, long> Permits { get; init; } = ImmutableDictionary<Guid, long>.Empty;
    [Id(2)] public bool Tripped { get; init; }
    [Id(3)] public int Trips { get; init; }
}

/// <summary>
/// Hands out refund permits: at most RefundsPerWindowMax refunds and RefundAmountPerWindowMaxMinor per window.
/// A refusal trips the breaker until the window ends or an operator resets it, with one alert per trip. It never
/// blocks releases. A refund larger than the whole window cap needs an operator's approval instead.
/// </summary>
[GrainType("circuit-breaker")]
public sealed partial class CircuitBreakerGrain(
    [PersistentState("circuit-breaker", EscrowStorage.ProviderName)] IPersistentState<CircuitBreakerState> state,
    TimeProvider clock,
    IEscrowStore store,
    IOptions<CircuitBreakerOptions> options,
    ILogger<CircuitBreakerGrain> logger) : Grain, ICircuitBreakerGrain
{
    public async Task<RefundPermit> RequestPermitAsync(Guid escrowId, long amountMinor)
    {
        var o = options.Value;
        var now = clock.GetUtcNow();
        var s = CurrentWindow(now);
        if (s.Permits.ContainsKey(escrowId))
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
        if (s.Permits.Count + 1 > o.RefundsPerWindowMax || s.Permits.Values.Sum() + amountMinor > o.RefundAmountPerWindowMaxMinor)
        {
            var tripped = s with { Tripped = true, Trips = s.Trips + 1 };
            // The alert first (its dedupe key makes it idempotent), then the trip: if either fails, the next request
            // trips again and the alert is raised once, instead of a tripped breaker that never alerted.
            await store.RaiseAlertAsync(new NewAlert("circuit_breaker_tripped", "critical", null,
                $"circuit_breaker_tripped/{tripped.Trips}/{s.WindowStartedAt:O}",
                $"{s.Permits.Count} refunds ({s.Permits.Values.Sum()} minor units) in the window started {s.WindowStartedAt:O}; further refunds wait in refund_pending until the window ends or POST /v1/admin/circuit-breaker/reset.",
                now));
            await WriteAsync(tripped);
            LogTripped(s.Permits.Count, s.Permits.Values.Sum());
            EscrowTelemetry.BreakerTrips.Add(1);
            EscrowTelemetry.RefundsDenied.Add(1);
            return RefundPermit.Denied;
        }
        await WriteAsync(s with { Permits = s.Permits.Add(escrowId, amountMinor) });
        return RefundPermit.Granted;
    }

    private Task WriteAsync(CircuitBreakerState next) => state.WriteOrForgetAsync(next, this);

    public Task<CircuitBreakerView> GetAsync() => Task.FromResult(View(CurrentWindow(clock.GetUtcNow())));

    public async Task<CircuitBreakerView> ResetAsync(string resetBy)
    {
        await WriteAsync(state.State with { WindowStartedAt = clock.GetUtcNow(), Permits = ImmutableDictionary<Guid, long>.Empty, Tripped = false });
        LogReset(resetBy);
        return View(state.State);
    }

    /// <summary>The state as of now: a window that has ended is replaced by a fresh one (closing the breaker).</summary>
    private CircuitBreakerState CurrentWindow(DateTimeOffset now)
    {
        var s = state.State;
        return s.WindowStartedAt is { } start && now < start + options.Value.Window
            ? s
            : s with { WindowStartedAt = now, Permits = ImmutableDictionary<Guid, long>.Empty, Tripped = false };
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
        return new CircuitBreakerView(s.Tripped ? "open" : "closed", s.WindowStartedAt, s.Permits.Count, s.Permits.Values.Sum(),
            o.RefundsPerWindowMax, o.RefundAmountPerWindowMaxMinor, o.Window, s.Trips);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Circuit breaker tripped after {Refunds} refunds ({AmountMinor} minor units) in the window")]
    private partial void LogTripped(int refunds, long amountMinor);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Circuit breaker reset by {ResetBy}")]
    private partial void LogReset(string resetBy);
}
