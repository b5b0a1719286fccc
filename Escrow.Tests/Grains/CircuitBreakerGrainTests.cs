using Orleans.Core.Internal;

namespace Escrow.Tests.Grains;

/// <summary>A cluster whose breaker allows 3 refunds, 5 000 euro cents and 500 yen per 10-minute window.</summary>
public sealed class SmallBreakerFixture() : GrainClusterFixture(refundsPerWindowMax: 3, refundAmountPerWindowMaxMinor: 5_000);

public sealed class CircuitBreakerGrainTests(SmallBreakerFixture f) : IClassFixture<SmallBreakerFixture>
{
    private ICircuitBreakerGrain Breaker => f.Grains.GetGrain<ICircuitBreakerGrain>(0);

    [Fact]
    public async Task A_permit_request_is_idempotent_per_escrow_within_the_window()
    {
        await Breaker.ResetAsync("test");
        var escrow = Guid.NewGuid();

        var first = await Breaker.RequestPermitAsync(escrow, Money.Eur(1_000));
        var again = await Breaker.RequestPermitAsync(escrow, Money.Eur(1_000));

        Assert.Equal(RefundPermit.Granted, first);
        Assert.Equal(RefundPermit.Granted, again);
        Assert.Equal(1, (await Breaker.GetAsync()).RefundsInWindow);
    }

    [Fact]
    public async Task After_the_breaker_activation_is_replaced_an_escrow_asking_again_counts_again_stricter_never_looser()
    {
        await Breaker.ResetAsync("test");
        var first = Guid.NewGuid();
        Assert.Equal(RefundPermit.Granted, await Breaker.RequestPermitAsync(first, Money.Eur(100)));

        await Breaker.AsReference<IGrainManagementExtension>().DeactivateOnIdle();
        // Gone from the directory: the next call creates a new activation (a count of 1 alone could still be the old one's).
        var management = f.Grains.GetGrain<IManagementGrain>(0);
        await Eventually.UntilAsync(async () => await management.GetActivationAddress(Breaker) is null, "the breaker's activation to be deactivated");
        Assert.Equal(1, (await Breaker.GetAsync()).RefundsInWindow); // the window's count, read back by the new activation

        // The new activation does not know which escrows were permitted: the same escrow is counted again.
        Assert.Equal(RefundPermit.Granted, await Breaker.RequestPermitAsync(first, Money.Eur(100)));
        Assert.Equal(2, (await Breaker.GetAsync()).RefundsInWindow);
        Assert.Equal(RefundPermit.Granted, await Breaker.RequestPermitAsync(Guid.NewGuid(), Money.Eur(100)));
        Assert.Equal(RefundPermit.Denied, await Breaker.RequestPermitAsync(Guid.NewGuid(), Money.Eur(100)));
    }

    [Fact]
    public void A_window_stored_with_per_escrow_permits_keeps_its_counts()
    {
        var stored = new CircuitBreakerState
        {
            WindowStartedAt = DateTimeOffset.UnixEpoch,
            Permits = System.Collections.Immutable.ImmutableDictionary<Guid, long>.Empty.Add(Guid.NewGuid(), 100).Add(Guid.NewGuid(), 250),
        };

        var carried = stored.WithCountersCarriedOver();

        Assert.Equal(2, carried.Granted);
        Assert.Equal(350, carried.GrantedMinor);
        Assert.Equal(carried, carried.WithCountersCarriedOver()); // carrying over twice counts nothing twice
    }

    [Fact]
    public async Task The_breaker_trips_after_the_count_cap_with_one_alert_and_a_reset_closes_it()
    {
        await Breaker.ResetAsync("test");
        var tripsBefore = (await Breaker.GetAsync()).Trips;
        var answers = new List<RefundPermit>();
        for (var i = 0; i < 5; i++)
        {
            answers.Add(await Breaker.RequestPermitAsync(Guid.NewGuid(), Money.Eur(100)));
        }

        Assert.Equal([RefundPermit.Granted, RefundPermit.Granted, RefundPermit.Granted, RefundPermit.Denied, RefundPermit.Denied], answers);
        var open = await Breaker.GetAsync();
        Assert.Equal("open", open.State);
        Assert.Equal(tripsBefore + 1, open.Trips);
        var alerts = (await f.Store.ListAlertsAsync(false, 1000)).Where(a => a.Kind == "circuit_breaker_tripped").ToList();
        Assert.Single(alerts, a => a.DedupeKey.StartsWith($"circuit_breaker_tripped/{open.Trips}/", StringComparison.Ordinal));

        var closed = await Breaker.ResetAsync("operator");
        Assert.Equal("closed", closed.State);
        Assert.Equal(RefundPermit.Granted, await Breaker.RequestPermitAsync(Guid.NewGuid(), Money.Eur(100)));
    }

    [Fact]
    public async Task The_amount_cap_trips_the_breaker_and_a_refund_above_the_whole_cap_needs_approval()
    {
        await Breaker.ResetAsync("test");

        Assert.Equal(RefundPermit.NeedsApproval, await Breaker.RequestPermitAsync(Guid.NewGuid(), Money.Eur(5_001)));
        Assert.Equal(RefundPermit.Granted, await Breaker.RequestPermitAsync(Guid.NewGuid(), Money.Eur(4_000)));
        Assert.Equal(RefundPermit.Denied, await Breaker.RequestPermitAsync(Guid.NewGuid(), Money.Eur(1_001)));
        Assert.Equal("open", (await Breaker.GetAsync()).State);
    }

    [Fact]
    public async Task Each_currency_has_its_own_amount_cap_and_reaching_one_stops_only_that_currencys_refunds()
    {
        await Breaker.ResetAsync("test");
        var yen = Currency.Parse("JPY");
        var tripsBefore = (await Breaker.GetAsync()).Trips;

        Assert.Equal(RefundPermit.NeedsApproval, await Breaker.RequestPermitAsync(Guid.NewGuid(), new Money(501, yen)));
        Assert.Equal(RefundPermit.Granted, await Breaker.RequestPermitAsync(Guid.NewGuid(), Money.Eur(4_000)));
        Assert.Equal(RefundPermit.Denied, await Breaker.RequestPermitAsync(Guid.NewGuid(), Money.Eur(1_001)));
        // The euro cap is reached; yen refunds are counted against their own cap (500), not against the euro one.
        Assert.Equal(RefundPermit.Granted, await Breaker.RequestPermitAsync(Guid.NewGuid(), new Money(400, yen)));
        var view = await Breaker.GetAsync();
        Assert.Equal("open", view.State);
        Assert.Equal([new("EUR", "open", 4_000, 5_000), new CircuitBreakerCurrencyView("JPY", "closed", 400, 500)], view.Currencies.ToArray());
        Assert.Equal((4_000L, 5_000L), (view.RefundAmountInWindowMinor, view.RefundAmountPerWindowMaxMinor)); // the first currency

        Assert.Equal(RefundPermit.Denied, await Breaker.RequestPermitAsync(Guid.NewGuid(), new Money(101, yen)));
        Assert.Equal(RefundPermit.Denied, await Breaker.RequestPermitAsync(Guid.NewGuid(), Money.Eur(1)));
        var both = await Breaker.GetAsync();
        Assert.Equal(["open", "open"], both.Currencies.Select(c => c.State));
        Assert.Equal(tripsBefore + 2, both.Trips);
        var alerts = (await f.Store.ListAlertsAsync(false, 1000)).Where(a => a.Kind == "circuit_breaker_tripped").ToList();
        Assert.Single(alerts, a => a.DedupeKey.StartsWith($"circuit_breaker_tripped/{tripsBefore + 2}/", StringComparison.Ordinal) && a.Details.Contains("JPY", StringComparison.Ordinal));
    }

    [Fact]
    public void An_amount_stored_by_a_single_cap_version_counts_against_every_currency_until_the_window_ends()
    {
        var stored = new CircuitBreakerState { WindowStartedAt = DateTimeOffset.UnixEpoch, Granted = 2, GrantedMinor = 300 };

        var next = stored with { GrantedMinorByCurrency = stored.GrantedMinorByCurrency.SetItem("JPY", 50) };

        Assert.Equal((300L, 350L), (next.GrantedIn("EUR"), next.GrantedIn("JPY")));
        Assert.Equal(0L, next.NewWindow(DateTimeOffset.UnixEpoch.AddHours(1)).GrantedIn("JPY"));
    }

    [Fact]
    public async Task A_new_window_closes_the_breaker_by_itself()
    {
        await Breaker.ResetAsync("test");
        for (var i = 0; i < 4; i++)
        {
            await Breaker.RequestPermitAsync(Guid.NewGuid(), Money.Eur(10));
        }
        Assert.Equal("open", (await Breaker.GetAsync()).State);

        f.Clock.Advance(TimeSpan.FromMinutes(10));

        Assert.Equal(RefundPermit.Granted, await Breaker.RequestPermitAsync(Guid.NewGuid(), Money.Eur(10)));
        Assert.Equal("closed", (await Breaker.GetAsync()).State);
    }

    [Fact]
    public async Task Expiring_escrows_beyond_the_cap_wait_in_refund_pending_and_are_refunded_after_a_reset()
    {
        await Breaker.ResetAsync("test");
        var recipient = await f.NewRecipientAsync(basePriceMinor: 100, dailyLimit: 10);
        var escrows = new List<(Guid Id, IEscrowGrain Grain, EscrowView View)>();
        for (var i = 0; i < 5; i++)
        {
            escrows.Add(await f.NewHeldEscrowAsync(recipient));
        }

        f.Clock.SetUtcNow(escrows.Max(e => e.View.ReplyDeadline));
        foreach (var (_, grain, _) in escrows)
        {
            await grain.WakeAsync();
        }
        var statuses = await Task.WhenAll(escrows.Select(async e => (await e.Grain.GetAsync())!.Status));

        Assert.Equal(3, statuses.Count(s => s == "refunded"));
        Assert.Equal(2, statuses.Count(s => s == "refund_pending"));

        await Breaker.ResetAsync("operator");
        f.Clock.Advance(TimeSpan.FromMinutes(1));
        foreach (var (_, grain, _) in escrows)
        {
            await Eventually.UntilAsync(async () => (await grain.GetAsync())!.Status == "refunded", "refunded after reset");
        }
        Assert.All(escrows, e => Assert.Equal("canceled", f.Payments.PaymentIntents[e.View.PaymentIntentId!].Status));
    }
}
