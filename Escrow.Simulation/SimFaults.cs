using System.Collections.Concurrent;

namespace Escrow.Simulation;

/// <summary>Every kind of fault the simulation injects. Each has its own rate in <see cref="FaultRates"/>.</summary>
public enum FaultKind
{
    StripeServerError,
    StripeRateLimited,
    StripeLostResponse,
    StripeSlow,
    StripeTimeout,
    StorageWriteFailed,
    StorageWriteLost,
    StoreCommandFailed,
    EmailFailed,
    CrashAfterCapture,
    CrashAfterTransfer,
    CrashAfterCancel,
    CrashAfterRefund,
    CrashAfterPaymentIntent,
    CrashAfterEmail,
    CrashAfterAlert,
    CrashAfterPermit,
    CrashAfterSlotRelease,
    CrashAfterPayoutWait,
    DuplicateEvent,
    DelayedEvent,
    StaleAccountEvent,
    EarlyTick,
    DuplicateTick,
    MissedTick,
    ClockJump,
    BreakerDeactivated,
    EscrowDeactivated,
    DuplicatePayoutsEnabled,
    /// <summary>Stripe refuses a cancel, refund or capture for good (a 4xx: resource_missing, charge_already_refunded, amount_too_large).</summary>
    StripeRefused,
    /// <summary>Stripe refuses a transfer reversal: the connected account's balance does not cover it (balance_insufficient).</summary>
    ReversalRefused,
    /// <summary>A chargeback after release: charge.dispute.created, then charge.dispute.closed won or lost.</summary>
    DisputeAfterRelease,
}

/// <summary>The probability of each fault where it can happen (per call, per event or per step).</summary>
public sealed record FaultRates
{
    public double StripeServerError { get; init; } = 0.04;
    public double StripeRateLimited { get; init; } = 0.03;
    public double StripeLostResponse { get; init; } = 0.04;
    public double StripeSlow { get; init; } = 0.05;

    /// <summary>Of the slow answers, the share that comes after the client gave up (performed, answer lost).</summary>
    public double StripeTimeout { get; init; } = 0.3;
    public double StorageWriteFailed { get; init; } = 0.02;
    public double StorageWriteLost { get; init; } = 0.01;
    public double StoreCommandFailed { get; init; } = 0.03;
    public double EmailFailed { get; init; } = 0.03;
    public double CrashAfterCapture { get; init; } = 0.08;
    public double CrashAfterTransfer { get; init; } = 0.08;
    public double CrashAfterCancel { get; init; } = 0.08;
    public double CrashAfterRefund { get; init; } = 0.2;
    public double CrashAfterPaymentIntent { get; init; } = 0.05;
    public double CrashAfterEmail { get; init; } = 0.05;
    public double CrashAfterAlert { get; init; } = 0.1;
    public double CrashAfterPermit { get; init; } = 0.1;
    public double CrashAfterSlotRelease { get; init; } = 0.1;
    public double CrashAfterPayoutWait { get; init; } = 0.1;
    public double DuplicateEvent { get; init; } = 0.3;
    public double DelayedEvent { get; init; } = 0.3;
    public double StaleAccountEvent { get; init; } = 0.2;
    public double EarlyTick { get; init; } = 0.05;
    public double DuplicateTick { get; init; } = 0.1;
    public double MissedTick { get; init; } = 0.15;
    public double ClockJump { get; init; } = 0.1;
    public double BreakerDeactivated { get; init; } = 0.03;
    public double EscrowDeactivated { get; init; } = 0.02;
    public double DuplicatePayoutsEnabled { get; init; } = 0.2;
    public double StripeRefused { get; init; } = 0.03;
    public double ReversalRefused { get; init; } = 0.3;
    public double DisputeAfterRelease { get; init; } = 0.08;

    public static FaultRates None { get; } = new()
    {
        StripeServerError = 0, StripeRateLimited = 0, StripeLostResponse = 0, StripeSlow = 0, StripeTimeout = 0,
        StorageWriteFailed = 0, StorageWriteLost = 0, StoreCommandFailed = 0, EmailFailed = 0,
        CrashAfterCapture = 0, CrashAfterTransfer = 0, CrashAfterCancel = 0, CrashAfterRefund = 0,
        CrashAfterPaymentIntent = 0, CrashAfterEmail = 0, CrashAfterAlert = 0, CrashAfterPermit = 0, CrashAfterSlotRelease = 0, CrashAfterPayoutWait = 0,
        DuplicateEvent = 0, DelayedEvent = 0, StaleAccountEvent = 0, EarlyTick = 0, DuplicateTick = 0, MissedTick = 0,
        ClockJump = 0, BreakerDeactivated = 0, EscrowDeactivated = 0, DuplicatePayoutsEnabled = 0,
        StripeRefused = 0, ReversalRefused = 0, DisputeAfterRelease = 0,
    };

    public double Of(FaultKind kind) => kind switch
    {
        FaultKind.StripeServerError => StripeServerError,
        FaultKind.StripeRateLimited => StripeRateLimited,
        FaultKind.StripeLostResponse => StripeLostResponse,
        FaultKind.StripeSlow => StripeSlow,
        FaultKind.StripeTimeout => StripeTimeout,
        FaultKind.StorageWriteFailed => StorageWriteFailed,
        FaultKind.StorageWriteLost => StorageWriteLost,
        FaultKind.StoreCommandFailed => StoreCommandFailed,
        FaultKind.EmailFailed => EmailFailed,
        FaultKind.CrashAfterCapture => CrashAfterCapture,
        FaultKind.CrashAfterTransfer => CrashAfterTransfer,
        FaultKind.CrashAfterCancel => CrashAfterCancel,
        FaultKind.CrashAfterRefund => CrashAfterRefund,
        FaultKind.CrashAfterPaymentIntent => CrashAfterPaymentIntent,
        FaultKind.CrashAfterEmail => CrashAfterEmail,
        FaultKind.CrashAfterAlert => CrashAfterAlert,
        FaultKind.CrashAfterPermit => CrashAfterPermit,
        FaultKind.CrashAfterSlotRelease => CrashAfterSlotRelease,
        FaultKind.CrashAfterPayoutWait => CrashAfterPayoutWait,
        FaultKind.DuplicateEvent => DuplicateEvent,
        FaultKind.DelayedEvent => DelayedEvent,
        FaultKind.StaleAccountEvent => StaleAccountEvent,
        FaultKind.EarlyTick => EarlyTick,
        FaultKind.DuplicateTick => DuplicateTick,
        FaultKind.MissedTick => MissedTick,
        FaultKind.ClockJump => ClockJump,
        FaultKind.BreakerDeactivated => BreakerDeactivated,
        FaultKind.EscrowDeactivated => EscrowDeactivated,
        FaultKind.DuplicatePayoutsEnabled => DuplicatePayoutsEnabled,
        FaultKind.StripeRefused => StripeRefused,
        FaultKind.ReversalRefused => ReversalRefused,
        FaultKind.DisputeAfterRelease => DisputeAfterRelease,
        _ => 0,
    };
}

/// <summary>
/// Decides faults from the seed. Faults inside the service (Stripe, storage, email) are decided by a hash of
/// (seed, kind, site, n), where the site names the escrow or grain and the operation and n counts the calls at that
/// site: the answer does not depend on how Orleans interleaves different grains, so a seed replays the same faults
/// for the same sequence of calls per grain. Faults the driver injects use the driver's own System.Random(seed).
/// </summary>
public sealed class SimFaults(int seed, FaultRates rates)
{
    private readonly ConcurrentDictionary<string, int> _calls = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<FaultKind, long> _injected = new();

    public FaultRates Rates { get; } = rates;

    /// <summary>Off during the final settling phase: the outage is over, and what was left must now converge.</summary>
    public bool Enabled { get; set; } = true;

    public IReadOnlyDictionary<FaultKind, long> Injected => _injected;

    /// <summary>Whether the fault happens at this call of this site (deterministic per seed and per-site call count).</summary>
    public bool Roll(FaultKind kind, string site)
    {
        var rate = Rates.Of(kind);
        if (!Enabled || rate <= 0)
        {
            return false;
        }
        var n = _calls.AddOrUpdate(kind + "|" + site, 0, (_, v) => v + 1);
        var hit = Unit(Hash(seed, kind, site, n)) < rate;
        if (hit)
        {
            Count(kind);
        }
        return hit;
    }

    /// <summary>A deterministic small number for this site (e.g. how long a slow answer takes).</summary>
    public int Pick(string site, int max) => (int)(Hash(seed, FaultKind.StripeSlow, site, -1) % (ulong)Math.Max(1, max));

    public void Count(FaultKind kind) => _injected.AddOrUpdate(kind, 1, (_, v) => v + 1);

    private static double Unit(ulong h) => (h >> 11) * (1.0 / (1UL << 53));

    private static ulong Hash(int seed, FaultKind kind, string site, int n)
    {
        // FNV-1a over the parts, then a SplitMix64 finaliser: stable across processes and runtimes.
        var h = 14695981039346656037UL;
        void Mix(ulong v)
        {
            for (var i = 0; i < 8; i++)
            {
                h ^= (byte)(v >> (i * 8));
                h *= 1099511628211UL;
            }
        }
        Mix((ulong)(uint)seed);
        Mix((ulong)kind);
        Mix((ulong)(uint)n);
        foreach (var c in site)
        {
            Mix(c);
        }
        h += 0x9E3779B97F4A7C15UL;
        h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9UL;
        h = (h ^ (h >> 27)) * 0x94D049BB133111EBUL;
        return h ^ (h >> 31);
    }
}

/// <summary>A silo dying right after an external call was performed, before its result was written.</summary>
public sealed class SimulatedCrashException(string message) : Exception(message);
