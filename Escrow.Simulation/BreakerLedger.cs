using Microsoft.Extensions.Time.Testing;

namespace Escrow.Simulation;

/// <summary>A refund permit the breaker answered Granted, dated by the clock reading it decided with.</summary>
public sealed record BreakerGrant(Guid EscrowId, long AmountMinor, DateTimeOffset DecidedAt);

/// <summary>
/// The checker's own count of refunds per breaker window: every permit the breaker granted, dated when the breaker
/// decided it, and every window start the breaker stored. A permit is answered only once stored, so each granted
/// window is among the stored starts. The escrow's <c>refund_permit_granted</c> entry is no date for this: it is
/// written when the escrow decides on the answer, which may be in a later window (the call outlived a clock move, or
/// the escrow crashed after the permit and asked again).
/// </summary>
public sealed class BreakerLedger
{
    private readonly Lock _gate = new();
    private readonly SortedSet<DateTimeOffset> _windowStarts = [];
    private readonly List<BreakerGrant> _grants = [];

    public void Clear()
    {
        lock (_gate)
        {
            _windowStarts.Clear();
            _grants.Clear();
        }
    }

    public void WindowStored(DateTimeOffset start)
    {
        lock (_gate)
        {
            _windowStarts.Add(start);
        }
    }

    public void Granted(BreakerGrant grant)
    {
        lock (_gate)
        {
            _grants.Add(grant);
        }
    }

    public bool HasGranted(Guid escrowId)
    {
        lock (_gate)
        {
            return _grants.Any(g => g.EscrowId == escrowId);
        }
    }

    /// <summary>The windows whose distinct permitted escrows exceed a cap, and any permit outside every stored window.</summary>
    public IReadOnlyList<string> Violations(TimeSpan window, int refundsMax, long amountMaxMinor)
    {
        lock (_gate)
        {
            var violations = new List<string>();
            var byWindow = new Dictionary<DateTimeOffset, List<BreakerGrant>>();
            foreach (var g in _grants)
            {
                var starts = _windowStarts.GetViewBetween(DateTimeOffset.MinValue, g.DecidedAt);
                if (starts.Count == 0 || g.DecidedAt >= starts.Max + window)
                {
                    violations.Add($"the breaker granted escrow {g.EscrowId} a refund permit at {g.DecidedAt:O}, outside every window it stored");
                    continue;
                }
                (byWindow.TryGetValue(starts.Max, out var list) ? list : byWindow[starts.Max] = []).Add(g);
            }
            foreach (var (start, grants) in byWindow.OrderBy(kv => kv.Key))
            {
                var distinct = grants.DistinctBy(g => g.EscrowId).ToList();
                var amount = distinct.Sum(g => g.AmountMinor);
                if (distinct.Count > refundsMax || amount > amountMaxMinor)
                {
                    violations.Add($"the breaker window started {start:O} granted {distinct.Count} refunds of {amount} minor units, over the caps ({refundsMax}, {amountMaxMinor})");
                }
            }
            return violations;
        }
    }
}

/// <summary>
/// Records the breaker's granted permits in the <see cref="BreakerLedger"/>, dated by the first clock reading of the
/// call (<see cref="DecisionClock"/>): the breaker decides without awaiting anything before it reads the clock.
/// </summary>
public sealed class SimBreakerObserver(BreakerLedger ledger) : IIncomingGrainCallFilter
{
    public async Task Invoke(IIncomingGrainCallContext context)
    {
        if (context.InterfaceMethod.Name != nameof(ICircuitBreakerGrain.RequestPermitAsync))
        {
            await context.Invoke();
            return;
        }
        using var reading = DecisionClock.Observe();
        await context.Invoke();
        if (context.Result is RefundPermit.Granted && reading.First is { } decidedAt)
        {
            ledger.Granted(new BreakerGrant((Guid)context.Request.GetArgument(0)!, ((Money)context.Request.GetArgument(1)!).Minor, decidedAt));
        }
    }
}

/// <summary>The simulation's fake clock, which can tell an observer (in the same async flow) the first time it read.</summary>
public sealed class DecisionClock(FakeTimeProvider inner) : TimeProvider
{
    private static readonly AsyncLocal<Reading?> Current = new();

    public sealed class Reading : IDisposable
    {
        public DateTimeOffset? First { get; internal set; }

        public void Dispose() => Current.Value = null;
    }

    public static Reading Observe() => Current.Value = new Reading();

    public override DateTimeOffset GetUtcNow()
    {
        var now = inner.GetUtcNow();
        if (Current.Value is { First: null } reading)
        {
            reading.First = now;
        }
        return now;
    }

    public override long GetTimestamp() => inner.GetTimestamp();

    public override long TimestampFrequency => inner.TimestampFrequency;

    public override TimeZoneInfo LocalTimeZone => inner.LocalTimeZone;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
        inner.CreateTimer(callback, state, dueTime, period);
}
