using Escrow.Simulation;

namespace Escrow.Tests.Simulation;

/// <summary>The simulation checker's count of refund permits per breaker window (<see cref="BreakerLedger"/>).</summary>
public sealed class BreakerLedgerTests
{
    private static readonly TimeSpan Window = TimeSpan.FromMinutes(10);
    private static readonly DateTimeOffset T0 = new(2027, 1, 4, 10, 0, 0, TimeSpan.Zero);

    private static IReadOnlyList<string> Violations(BreakerLedger ledger) => ledger.Violations(Window, refundsMax: 6, amountMaxMinor: 10_000);

    /// <summary>
    /// Seed 299 of a 10 000-seed run reported "breaker window granted 3 refunds of 12600 minor units, over the caps"
    /// while the breaker's own counters stayed within them: the checker dated a permit by the escrow's
    /// refund_permit_granted entry, written after the breaker's answer came back, by then in the next window.
    /// </summary>
    [Fact]
    public void A_permit_granted_at_a_window_end_counts_in_that_window_though_the_escrow_records_it_in_the_next()
    {
        var a = Guid.NewGuid();
        var (b, c) = (Guid.NewGuid(), Guid.NewGuid());
        var nextWindow = T0 + Window + TimeSpan.FromSeconds(30);

        BreakerLedger Ledger(DateTimeOffset aDatedAt)
        {
            var ledger = new BreakerLedger();
            ledger.WindowStored(T0);
            ledger.Granted(new BreakerGrant(a, 4_200, aDatedAt));
            ledger.WindowStored(nextWindow);
            ledger.Granted(new BreakerGrant(b, 4_200, nextWindow));
            ledger.Granted(new BreakerGrant(c, 4_200, nextWindow + TimeSpan.FromSeconds(20)));
            return ledger;
        }

        // Dated when the breaker decided: 4 200 in the first window, 8 400 in the next, both within the caps.
        Assert.Empty(Violations(Ledger(aDatedAt: T0 + Window - TimeSpan.FromSeconds(1))));
        // Dated when its escrow recorded it (as the checker used to): the next window seems to hold 12 600.
        var misdated = Violations(Ledger(aDatedAt: nextWindow + TimeSpan.FromSeconds(15)));
        Assert.Equal($"the breaker window started {nextWindow:O} granted 3 refunds of 12600 minor units, over the caps (6, 10000)", Assert.Single(misdated));
    }

    [Fact]
    public void An_escrow_granted_again_in_its_window_after_a_crash_counts_once()
    {
        var ledger = new BreakerLedger();
        ledger.WindowStored(T0);
        var a = Guid.NewGuid();
        ledger.Granted(new BreakerGrant(a, 6_000, T0 + TimeSpan.FromMinutes(1)));
        ledger.Granted(new BreakerGrant(a, 6_000, T0 + TimeSpan.FromMinutes(4)));

        Assert.Empty(Violations(ledger));
    }

    [Fact]
    public void Seven_permits_in_one_window_are_over_the_count_cap()
    {
        var ledger = new BreakerLedger();
        ledger.WindowStored(T0);
        for (var i = 0; i < 7; i++)
        {
            ledger.Granted(new BreakerGrant(Guid.NewGuid(), 100, T0 + TimeSpan.FromMinutes(i)));
        }

        Assert.Equal($"the breaker window started {T0:O} granted 7 refunds of 700 minor units, over the caps (6, 10000)", Assert.Single(Violations(ledger)));
    }

    [Fact]
    public void A_permit_outside_every_stored_window_is_reported()
    {
        var ledger = new BreakerLedger();
        ledger.WindowStored(T0);
        var late = Guid.NewGuid();
        ledger.Granted(new BreakerGrant(late, 100, T0 + Window));

        Assert.Contains($"escrow {late}", Assert.Single(Violations(ledger)), StringComparison.Ordinal);
    }
}
