using Orleans.Concurrency;

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

    /// <summary>
    /// Written by versions with one amount cap: the window's amount in minor units of whatever currencies. Counted
    /// against every currency's cap until the window ends (stricter, never looser); no longer added to.
    /// </summary>
    [Id(5)] public long GrantedMinor { get; init; }

    /// <summary>The amount refunded in the window by currency code, in minor units.</summary>
    [Id(6)] public ImmutableDictionary<string, long> GrantedMinorByCurrency { get; init; } = ImmutableDictionary<string, long>.Empty;

    /// <summary>The currencies whose amount cap was reached in the window: only their refunds wait.</summary>
    [Id(7)] public ImmutableHashSet<string> TrippedCurrencies { get; init; } = ImmutableHashSet<string>.Empty;

    /// <summary>The amount counted against <paramref name="currency"/>'s cap in this window.</summary>
    public long GrantedIn(string currency) => GrantedMinor + GrantedMinorByCurrency.GetValueOrDefault(currency);

    public bool IsTripped(string currency) => Tripped || TrippedCurrencies.Contains(currency);

    /// <summary>A state an earlier version wrote with per-escrow permits, as counters (and without the permits).</summary>
    public CircuitBreakerState WithCountersCarriedOver() => Permits.IsEmpty ? this
        : this with { Granted = Math.Max(Granted, Permits.Count), GrantedMinor = Math.Max(GrantedMinor, Permits.Values.Sum()), Permits = ImmutableDictionary<Guid, long>.Empty };

    /// <summary>A new, closed window starting at <paramref name="now"/>; the trip count is kept.</summary>
    public CircuitBreakerState NewWindow(DateTimeOffset now) => this with
    {
        WindowStartedAt = now, Granted = 0, GrantedMinor = 0, Tripped = false,
        GrantedMinorByCurrency = ImmutableDictionary<string, long>.Empty, TrippedCurrencies = ImmutableHashSet<string>.Empty,
    };
}

/// <summary>
/// Hands out refund permits: at most RefundsPerWindowMax refunds per window, and in each currency at most that
/// currency's AmountPerWindowMax. A refusal trips the breaker until the window ends or an operator resets it, with one
/// alert per trip: the count cap stops every refund, a currency's amount cap only that currency's. It never blocks
/// releases. A refund larger than its currency's whole cap, or in a currency without a cap, needs an operator's
/// approval instead.
/// The stored state is a few counters, whatever the caps. An escrow that asks again (its answer was lost) is
/// recognised by this activation and not counted twice; after the breaker's activation is replaced it would be
/// counted again, which can only make the cap stricter, never looser.
/// <para>
/// Group commit: the one breaker serves every expiring escrow of the cluster, and one durable write per permit, one
/// after the other, made refunds queue behind it when many deadlines fall together (a 100 000-escrow run completed
/// refunds 13.8 s after the deadline at p99). So requests interleave ([Reentrant]): each is decided at once, without
/// an await between reading the counters and changing them, and waits until a write that includes its decision is
/// stored; the decisions taken while one write is in flight share the next one. A permit is answered only once
/// stored. A denial needs no write (refusing is always safe). When a write fails, what is stored is unknown: every
/// decision not yet stored fails with it, the activation answers nothing more and goes, and the next one reads the
/// stored counters (a permit not stored was not given).
/// </para>
/// </summary>
[GrainType("circuit-breaker")]
[Reentrant]
public sealed partial class CircuitBreakerGrain(
    [PersistentState("circuit-breaker", EscrowStorage.ProviderName)] IPersistentState<CircuitBreakerState> state,
    TimeProvider clock,
    IEscrowStore store,
    IOptions<CircuitBreakerOptions> options,
    IOptions<EscrowOptions> escrowOptions,
    ILogger<CircuitBreakerGrain> logger) : Grain, ICircuitBreakerGrain
{
    // The escrows permitted (stored or being stored) in the window _grantedWindow, in memory only (see the summary).
    private readonly HashSet<Guid> _granted = [];
    private DateTimeOffset? _grantedWindow;

    // The decided state: the stored one plus the decisions not yet stored, numbered by _decided. state.State is what
    // the write in flight sends, so what is known to be stored is kept apart (_storedState) for the view.
    private CircuitBreakerState _decidedState = null!;
    private CircuitBreakerState _storedState = null!;
    private long _decided;
    private long _stored;
    private Task? _writing;
    private Exception? _failed;

    // The alerts of trips decided and not yet stored.
    private readonly List<NewAlert> _alertsToRaise = [];

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
        _decidedState = state.State;
        _storedState = state.State;
        return Task.CompletedTask;
    }

    public async Task<RefundPermit> RequestPermitAsync(Guid escrowId, Money amount)
    {
        ThrowIfFailed();
        var o = options.Value;
        var amountMinor = amount.Minor;
        var currency = amount.Currency.Code;
        var s = CurrentWindow(_decidedState, clock.GetUtcNow());
        if (_grantedWindow != s.WindowStartedAt)
        {
            _granted.Clear();
            _grantedWindow = s.WindowStartedAt;
        }
        if (_granted.Contains(escrowId))
        {
            await StoreDecisionsAsync(); // its permit may still be in the write in flight
            return RefundPermit.Granted;
        }
        // A currency with no cap (disabled since the escrow was made) is an operator's decision, like an oversized refund.
        if (!Caps.TryGetValue(currency, out var cap) || amountMinor > cap)
        {
            return RefundPermit.NeedsApproval;
        }
        if (s.IsTripped(currency))
        {
            EscrowTelemetry.RefundsDenied.Add(1);
            return RefundPermit.Denied;
        }
        var countReached = s.Granted + 1 > o.RefundsPerWindowMax;
        if (countReached || s.GrantedIn(currency) + amountMinor > cap)
        {
            // Requests decided from now on are denied; the write that stores the trip raises its alert first.
            var tripped = countReached
                ? s with { Tripped = true, Trips = s.Trips + 1 }
                : s with { TrippedCurrencies = s.TrippedCurrencies.Add(currency), Trips = s.Trips + 1 };
            var what = countReached
                ? $"{s.Granted} refunds (the cap is {o.RefundsPerWindowMax}) in the window started {s.WindowStartedAt:O}; further refunds wait"
                : $"{s.GrantedIn(currency)} minor units of {currency} refunded (the cap is {cap}) in the window started {s.WindowStartedAt:O}; further {currency} refunds wait";
            _alertsToRaise.Add(new NewAlert(AlertKind.CircuitBreakerTripped, null,
                $"circuit_breaker_tripped/{tripped.Trips}/{s.WindowStartedAt:O}",
                $"{what} in refund_pending until the window ends or POST /v1/admin/circuit-breaker/reset.",
                clock.GetUtcNow()));
            Decide(tripped);
            await StoreDecisionsAsync();
            LogTripped(s.Granted, s.GrantedIn(currency), currency);
            EscrowTelemetry.BreakerTrips.Add(1);
            EscrowTelemetry.RefundsDenied.Add(1);
            return RefundPermit.Denied;
        }
        Decide(s with
        {
            Granted = s.Granted + 1,
            GrantedMinorByCurrency = s.GrantedMinorByCurrency.SetItem(currency, s.GrantedMinorByCurrency.GetValueOrDefault(currency) + amountMinor),
        });
        _granted.Add(escrowId);
        await StoreDecisionsAsync();
        return RefundPermit.Granted;
    }

    public Task<CircuitBreakerView> GetAsync() => Task.FromResult(View(CurrentWindow(_storedState, clock.GetUtcNow())));

    public async Task<CircuitBreakerView> ResetAsync(string resetBy)
    {
        ThrowIfFailed();
        Decide(_decidedState.NewWindow(clock.GetUtcNow()));
        await StoreDecisionsAsync();
        LogReset(resetBy);
        return View(_storedState);
    }

    /// <summary>The state as of now: a window that has ended is replaced by a fresh one (closing the breaker).</summary>
    private CircuitBreakerState CurrentWindow(CircuitBreakerState s, DateTimeOffset now) =>
        s.WindowStartedAt is { } start && now < start + options.Value.Window
            ? s
            : s.NewWindow(now);

    private void Decide(CircuitBreakerState next)
    {
        _decidedState = next;
        _decided++;
    }

    /// <summary>Returns once every decision taken so far is stored: joins the write in flight, then the next one if needed.</summary>
    private async Task StoreDecisionsAsync()
    {
        var mine = _decided;
        while (_stored < mine)
        {
            ThrowIfFailed();
            var write = _writing ??= WriteDecidedAsync();
            try
            {
                await write;
            }
            finally
            {
                if (ReferenceEquals(_writing, write))
                {
                    _writing = null;
                }
            }
        }
    }

    private async Task WriteDecidedAsync()
    {
        var next = _decidedState;
        var number = _decided;
        var alerts = _alertsToRaise.ToArray();
        try
        {
            foreach (var alert in alerts)
            {
                // The alert before the trip is stored (its dedupe key makes it idempotent): if either fails, the next
                // activation trips again and the alert is raised once, instead of a tripped breaker that never alerted.
                await store.RaiseAlertAsync(alert);
            }
            await state.WriteOrForgetAsync(next, this);
            _alertsToRaise.RemoveRange(0, alerts.Length);
            _storedState = next;
            _stored = number;
        }
        catch (Exception e)
        {
            _failed = e;
            DeactivateOnIdle();
            throw;
        }
    }

    private void ThrowIfFailed()
    {
        if (_failed is { } e)
        {
            // Until the activation has gone: what is stored is unknown, so nothing is answered from memory. The cause is
            // named, not attached: an exception of a namespace Orleans does not serialize would not reach the caller.
            throw new OrleansException($"The circuit breaker's last write failed ({e.GetType().Name}); it is being reactivated. Ask again.");
        }
    }

    /// <summary>The amount cap of each enabled currency (validated at start, so every enabled currency has one).</summary>
    private IReadOnlyDictionary<string, long> Caps => _caps ??= options.Value.AmountCaps(escrowOptions.Value.EnabledCurrencies).Caps;

    private IReadOnlyDictionary<string, long>? _caps;

    private CircuitBreakerView View(CircuitBreakerState s)
    {
        var o = options.Value;
        var currencies = escrowOptions.Value.EnabledCurrencies
            .Select(c => new CircuitBreakerCurrencyView(c, s.IsTripped(c) ? "open" : "closed", s.GrantedIn(c), Caps.GetValueOrDefault(c)))
            .ToImmutableArray();
        var first = currencies[0];
        return new CircuitBreakerView(s.Tripped || !s.TrippedCurrencies.IsEmpty ? "open" : "closed", s.WindowStartedAt, s.Granted, first.RefundAmountInWindowMinor,
            o.RefundsPerWindowMax, first.RefundAmountPerWindowMaxMinor, o.Window, s.Trips, currencies);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Circuit breaker tripped after {Refunds} refunds ({AmountMinor} minor units of {Currency}) in the window")]
    private partial void LogTripped(int refunds, long amountMinor, string currency);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Circuit breaker reset by {ResetBy}")]
    private partial void LogReset(string resetBy);
}
