namespace Escrow.Tests.Grains;

public sealed class RecipientGrainTests(GrainClusterFixture f) : IClassFixture<GrainClusterFixture>
{
    [Fact]
    public async Task Only_paid_escrows_take_daily_slots_and_a_reservation_is_idempotent()
    {
        var recipient = f.Grains.GetGrain<IRecipientGrain>(await f.NewRecipientAsync(dailyLimit: 2));
        var first = Guid.NewGuid();

        var a = await recipient.ReserveAsync(first, TimeSpan.FromHours(24));
        var again = await recipient.ReserveAsync(first, TimeSpan.FromHours(24));
        var b = await recipient.ReserveAsync(Guid.NewGuid(), TimeSpan.FromHours(48));
        var unpaid = await recipient.ReserveAsync(Guid.NewGuid(), TimeSpan.FromHours(72));
        Assert.True(a.Reserved);
        Assert.True(a.New);
        Assert.Equal(a with { New = false }, again);
        Assert.True(b.Reserved);
        Assert.True(unpaid.Reserved);

        await recipient.TakeSlotAsync(first, a.AmountMinor, a.RevenueShareBps, a.Currency);
        await recipient.TakeSlotAsync(Guid.NewGuid(), 1_000, 7_500, "EUR");
        var refused = await recipient.ReserveAsync(Guid.NewGuid(), TimeSpan.FromHours(72));
        Assert.False(refused.Reserved);
        Assert.Equal("daily_limit_reached", refused.RejectionCode);
        Assert.Equal(a with { New = false }, await recipient.ReserveAsync(first, TimeSpan.FromHours(24)));
    }

    [Fact]
    public async Task A_released_slot_can_be_used_again_and_a_new_utc_day_starts_a_new_count()
    {
        var recipient = f.Grains.GetGrain<IRecipientGrain>(await f.NewRecipientAsync(dailyLimit: 1));
        var first = Guid.NewGuid();
        Assert.True((await recipient.ReserveAsync(first, TimeSpan.FromHours(24))).Reserved);
        await recipient.TakeSlotAsync(first, 1_500, 7_500, "EUR");
        Assert.False((await recipient.ReserveAsync(Guid.NewGuid(), TimeSpan.FromHours(24))).Reserved);

        await recipient.ReleaseSlotAsync(first);
        var second = Guid.NewGuid();
        Assert.True((await recipient.ReserveAsync(second, TimeSpan.FromHours(24))).Reserved);
        await recipient.TakeSlotAsync(second, 1_500, 7_500, "EUR");

        f.Clock.Advance(TimeSpan.FromDays(1));
        Assert.True((await recipient.ReserveAsync(Guid.NewGuid(), TimeSpan.FromHours(24))).Reserved);
    }

    [Fact]
    public async Task The_price_is_the_base_price_times_the_windows_multiplier_and_the_share_is_fixed_at_reservation()
    {
        var id = await f.NewRecipientAsync(basePriceMinor: 999, dailyLimit: 10);
        var recipient = f.Grains.GetGrain<IRecipientGrain>(id);

        var day = await recipient.ReserveAsync(Guid.NewGuid(), TimeSpan.FromHours(24));
        var twoDays = await recipient.ReserveAsync(Guid.NewGuid(), TimeSpan.FromHours(48));
        var threeDays = await recipient.ReserveAsync(Guid.NewGuid(), TimeSpan.FromHours(72));
        var unsupported = await recipient.ReserveAsync(Guid.NewGuid(), TimeSpan.FromHours(5));

        Assert.Equal(1_499, day.AmountMinor);
        Assert.Equal(1_199, twoDays.AmountMinor);
        Assert.Equal(999, threeDays.AmountMinor);
        Assert.Equal("unsupported_response_window", unsupported.RejectionCode);
        Assert.All(new[] { day, twoDays, threeDays }, r => Assert.Equal(7_500, r.RevenueShareBps));
    }

    [Fact]
    public async Task A_recipient_priced_in_a_currency_no_longer_enabled_reserves_nothing()
    {
        // The API refuses such a profile; one stored before Escrow:Currencies changed is refused when a sender pays.
        var id = "usd-" + Guid.NewGuid().ToString("N")[..8];
        var recipient = f.Grains.GetGrain<IRecipientGrain>(id);
        await recipient.UpsertAsync(new RecipientProfile($"{id}@example.com", "Recipient", 1_000, "USD", null, 10));

        var refused = await recipient.ReserveAsync(Guid.NewGuid(), TimeSpan.FromHours(24));
        var yen = await f.Grains.GetGrain<IRecipientGrain>(id + "-jpy").UpsertAsync(new RecipientProfile($"{id}@example.com", "Recipient", 1_000, "JPY", null, 10));

        Assert.Equal((false, "currency_not_enabled"), (refused.Reserved, refused.RejectionCode));
        Assert.True((await f.Grains.GetGrain<IRecipientGrain>(yen.Id).ReserveAsync(Guid.NewGuid(), TimeSpan.FromHours(24))).Reserved);
    }

    [Fact]
    public async Task An_unknown_recipient_reserves_nothing()
    {
        var result = await f.Grains.GetGrain<IRecipientGrain>("nobody-" + Guid.NewGuid().ToString("N")[..8]).ReserveAsync(Guid.NewGuid(), TimeSpan.FromHours(24));

        Assert.False(result.Reserved);
        Assert.Equal("unknown_recipient", result.RejectionCode);
    }

    [Fact]
    public async Task Payouts_enabled_releases_every_escrow_waiting_for_setup()
    {
        var id = await f.NewRecipientAsync(payoutsEnabled: false, dailyLimit: 10);
        var recipient = f.Grains.GetGrain<IRecipientGrain>(id);
        var link = await recipient.CreateOnboardingLinkAsync("https://r.invalid", "https://b.invalid");
        var waiting = new List<IEscrowGrain>();
        for (var i = 0; i < 3; i++)
        {
            var (_, grain, _) = await f.NewHeldEscrowAsync(id);
            await grain.AcceptReplyAsync(new ReplyReceived(f.Clock.GetUtcNow(), "platform", null));
            waiting.Add(grain);
        }
        Assert.Equal(3, (await recipient.GetAsync())!.EscrowsAwaitingPayoutSetup);

        f.Payments.AccountsEnabled[link.AccountId] = true;
        var refreshed = await recipient.RefreshAccountAsync();

        Assert.True(refreshed!.PayoutsEnabled);
        foreach (var grain in waiting)
        {
            await Escrow.Testing.Eventually.UntilAsync(async () => (await grain.GetAsync())!.Status == "released", "released");
        }
        Assert.Equal(0, refreshed.EscrowsAwaitingPayoutSetup);
    }

    [Fact]
    public async Task A_missed_account_update_is_caught_by_the_poll_which_also_reminds_the_recipient_by_email()
    {
        var id = await f.NewRecipientAsync(payoutsEnabled: false, dailyLimit: 10);
        var recipient = f.Grains.GetGrain<IRecipientGrain>(id);
        var link = await recipient.CreateOnboardingLinkAsync("https://r.invalid", "https://b.invalid");
        var (escrowId, grain, _) = await f.NewHeldEscrowAsync(id);
        await grain.AcceptReplyAsync(new ReplyReceived(f.Clock.GetUtcNow(), "platform", null));
        int Reminders() => f.Emails.Sent.Count(m => m.Tag == "payout-setup-reminder" && m.To == $"{id}@example.com");

        await Escrow.Testing.Eventually.UntilAsync(() => Task.FromResult(Reminders() == 1), "the poll's payout-setup reminder");
        Assert.Equal(1, f.Emails.Count(escrowId, "pending-payout-setup")); // the escrow's own e-mail, once
        Assert.Equal("pending_user_setup", (await grain.GetAsync())!.Status);

        // Payouts become possible at Stripe, and nobody tells us (no AccountUpdatedAsync): the poll finds out.
        f.Payments.AccountsEnabled[link.AccountId] = true;
        await Escrow.Testing.Eventually.UntilAsync(async () => (await grain.GetAsync())!.Status == "released", "released by the poll");
    }
}
