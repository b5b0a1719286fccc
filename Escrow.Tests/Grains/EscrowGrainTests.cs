using Escrow.Grains.Payments;
using Orleans.Reminders;

namespace Escrow.Tests.Grains;

public sealed class EscrowGrainTests(GrainClusterFixture f) : IClassFixture<GrainClusterFixture>
{
    private async Task<EscrowView> WaitForAsync(IEscrowGrain grain, string status) =>
        (await Eventually.UntilAsync(async () => await grain.GetAsync(), v => v!.Status == status, $"escrow {status}"))!;

    [Fact]
    public async Task Creating_again_with_the_same_request_returns_the_same_escrow_and_another_body_is_refused()
    {
        var recipient = await f.NewRecipientAsync();
        var (id, grain, first) = await f.NewHeldEscrowAsync(recipient);

        var again = await grain.CreateAsync(new CreateEscrow(recipient, "sender@example.com", TimeSpan.FromHours(24), "Subject", "A message of some length.", "pm_card_visa", "AB12"));
        var other = await grain.CreateAsync(new CreateEscrow(recipient, "sender@example.com", TimeSpan.FromHours(24), "Subject", "Another message entirely.", "pm_card_visa", "CD34"));

        Assert.True(again.Accepted);
        Assert.Equal(first.PaymentIntentId, again.View!.PaymentIntentId);
        Assert.Equal("idempotency_key_reused", other.RejectionCode);
        Assert.Equal(1, f.Payments.PaymentIntents.Values.Count(p => p.EscrowId == id));
    }

    [Fact]
    public async Task A_reply_releases_with_one_capture_and_one_transfer_of_the_share()
    {
        var recipient = await f.NewRecipientAsync();
        var (id, grain, view) = await f.NewHeldEscrowAsync(recipient);
        var transfersBefore = f.Payments.Transfers.Count;

        var result = await grain.AcceptReplyAsync(new ReplyReceived(f.Clock.GetUtcNow(), "platform", "Thanks!"));

        Assert.True(result.Accepted);
        var released = await WaitForAsync(grain, "released");
        var transfer = Assert.Single(f.Payments.Transfers, t => t.Id == released.TransferId);
        Assert.Equal(view.RecipientShareMinor, transfer.AmountMinor);
        Assert.Equal(transfersBefore + 1, f.Payments.Transfers.Count);
        Assert.Equal("succeeded", f.Payments.PaymentIntents[view.PaymentIntentId!].Status);
        Assert.Equal(view.AmountMinor, view.RecipientShareMinor + view.PlatformFeeMinor);
    }

    [Fact]
    public async Task A_second_reply_is_refused_and_pays_nothing()
    {
        var recipient = await f.NewRecipientAsync();
        var (_, grain, _) = await f.NewHeldEscrowAsync(recipient);
        await grain.AcceptReplyAsync(new ReplyReceived(f.Clock.GetUtcNow(), "platform", null));
        var released = await WaitForAsync(grain, "released");
        var transfers = f.Payments.Transfers.Count;

        var second = await grain.AcceptReplyAsync(new ReplyReceived(f.Clock.GetUtcNow(), "email", null));

        Assert.Equal("already_replied", second.RejectionCode);
        Assert.Equal(transfers, f.Payments.Transfers.Count);
        Assert.Equal(released.TransferId, (await grain.GetAsync())!.TransferId);
    }

    [Fact]
    public async Task A_transient_capture_failure_is_retried_after_backoff_and_captures_once()
    {
        var recipient = await f.NewRecipientAsync();
        var (_, grain, view) = await f.NewHeldEscrowAsync(recipient);
        f.Payments.FailNext("capture", PaymentErrorKind.Transient);

        await grain.AcceptReplyAsync(new ReplyReceived(f.Clock.GetUtcNow(), "platform", null));
        Assert.Equal("processing", (await grain.GetAsync())!.Status);

        f.Clock.Advance(TimeSpan.FromSeconds(6));
        var released = await WaitForAsync(grain, "released");
        Assert.Equal("succeeded", f.Payments.PaymentIntents[view.PaymentIntentId!].Status);
        Assert.NotNull(released.TransferId);
    }

    [Fact]
    public async Task A_transfer_whose_answer_is_lost_is_adopted_on_retry_and_paid_once()
    {
        var recipient = await f.NewRecipientAsync();
        var (id, grain, _) = await f.NewHeldEscrowAsync(recipient);
        f.Payments.LoseNextResponse("transfer");

        await grain.AcceptReplyAsync(new ReplyReceived(f.Clock.GetUtcNow(), "platform", null));
        var failed = await grain.GetAsync();
        Assert.Equal("transfer_failed", failed!.Status);
        Assert.NotNull(failed.NextTransferAttemptAt);

        f.Clock.SetUtcNow(failed.NextTransferAttemptAt!.Value);
        var released = await WaitForAsync(grain, "released");

        var transfer = Assert.Single(f.Payments.Transfers, t => t.SourceTransaction == released.ChargeId);
        Assert.Equal(transfer.Id, released.TransferId);
        Assert.Contains(released.History, h => h.Event == "transfer_adopted");
        Assert.Contains(released.History, h => h.Status == "transfer_failed");
        _ = id;
    }

    [Fact]
    public async Task Transfer_refusals_back_off_until_the_attempts_are_used_up_then_alert_and_wait_for_an_operator()
    {
        var recipient = await f.NewRecipientAsync();
        var (id, grain, _) = await f.NewHeldEscrowAsync(recipient);
        for (var i = 0; i < 3; i++)
        {
            f.Payments.FailNext("transfer", PaymentErrorKind.Rejected, "balance_insufficient");
        }

        await grain.AcceptReplyAsync(new ReplyReceived(f.Clock.GetUtcNow(), "platform", null));
        var delays = new List<TimeSpan>();
        for (var attempt = 1; attempt < 3; attempt++)
        {
            var failed = (await grain.GetAsync())!;
            Assert.Equal("transfer_failed", failed.Status);
            delays.Add(failed.NextTransferAttemptAt!.Value - f.Clock.GetUtcNow());
            f.Clock.SetUtcNow(failed.NextTransferAttemptAt!.Value);
            await grain.WakeAsync();
        }
        var exhausted = (await grain.GetAsync())!;

        Assert.Equal([TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(2)], delays);
        Assert.Equal("transfer_failed", exhausted.Status);
        Assert.Null(exhausted.NextTransferAttemptAt);
        Assert.True(exhausted.NeedsOperator);
        await Eventually.UntilAsync(async () => (await f.Store.ListAlertsAsync(true, 1000)).Any(a => a.EscrowId == id && a.Kind == "transfer_retries_exhausted"), "alert");

        var retried = await grain.OperateAsync(new OperatorAction(OperatorActionKind.RetryTransfer, "balance topped up", "key-test"));
        Assert.True(retried.Accepted);
        Assert.Equal("released", (await grain.GetAsync())!.Status);
    }

    [Fact]
    public async Task The_deadline_refund_never_fires_before_deadline_plus_grace_and_fires_at_it()
    {
        var recipient = await f.NewRecipientAsync();
        var (_, grain, view) = await f.NewHeldEscrowAsync(recipient);
        await f.Grains.GetGrain<ICircuitBreakerGrain>(0).ResetAsync("test");

        f.Clock.SetUtcNow(view.ReplyDeadline - TimeSpan.FromSeconds(1));
        await grain.WakeAsync();
        Assert.Equal("held", (await grain.GetAsync())!.Status);
        Assert.Equal("requires_capture", f.Payments.PaymentIntents[view.PaymentIntentId!].Status);

        f.Clock.SetUtcNow(view.ReplyDeadline);
        var refunded = await WaitForAsync(grain, "refunded");
        Assert.Equal("canceled", f.Payments.PaymentIntents[view.PaymentIntentId!].Status);
        Assert.Contains(refunded.History, h => h.Event == "deadline_passed");
    }

    [Fact]
    public async Task The_reminder_that_refunds_at_the_deadline_waits_on_the_coalescing_clock()
    {
        var silo = f.Cluster.Silos[0].ServiceProvider;
        var reminderClock = Assert.IsType<CoalescingTimeProvider>(silo.GetRequiredKeyedService<TimeProvider>(ReminderTimeProviderNames.Reminders));
        var recipient = await f.NewRecipientAsync();
        var (_, grain, view) = await f.NewHeldEscrowAsync(recipient);
        await f.Grains.GetGrain<ICircuitBreakerGrain>(0).ResetAsync("test");
        var dispatched = reminderClock.DispatchedCallbacks;

        // No call to the grain: only its reminder's tick, a callback of the reminder clock, can find the deadline.
        f.Clock.SetUtcNow(view.ReplyDeadline);
        await WaitForAsync(grain, "refunded");
        Assert.True(reminderClock.DispatchedCallbacks > dispatched);
    }

    [Fact]
    public async Task A_reply_inside_the_grace_releases_and_one_after_it_is_too_late()
    {
        var recipient = await f.NewRecipientAsync();
        var (_, inGrace, view) = await f.NewHeldEscrowAsync(recipient);
        var (_, late, lateView) = await f.NewHeldEscrowAsync(recipient);

        var accepted = await inGrace.AcceptReplyAsync(new ReplyReceived(view.ReplyDeadline, "email", null));
        var refused = await late.AcceptReplyAsync(new ReplyReceived(lateView.ReplyDeadline + TimeSpan.FromTicks(1), "email", null));

        Assert.True(accepted.Accepted);
        Assert.Contains(accepted.View!.History, h => h.Event == "reply_accepted");
        Assert.Equal("reply_too_late", refused.RejectionCode);
        Assert.Equal("held", (await late.GetAsync())!.Status);
    }

    [Fact]
    public async Task Emails_that_fail_are_retried_and_never_hold_up_the_release()
    {
        var recipient = await f.NewRecipientAsync();
        var (_, grain, _) = await f.NewHeldEscrowAsync(recipient);
        f.Emails.FailNext(2);

        await grain.AcceptReplyAsync(new ReplyReceived(f.Clock.GetUtcNow(), "platform", "An answer"));
        var released = (await grain.GetAsync())!;
        Assert.Equal("released", released.Status);
        Assert.True(released.PendingEffects > 0);

        f.Clock.Advance(TimeSpan.FromMinutes(1));
        await Eventually.UntilAsync(async () => (await grain.GetAsync())!.PendingEffects == 0, "emails sent");
        Assert.Contains(f.Emails.Sent, m => m.Tag == "payout-sent" && m.To == $"{recipient}@example.com");
    }

    [Fact]
    public async Task The_recipient_is_reminded_at_half_and_three_quarters_of_the_window_once_each()
    {
        var recipient = await f.NewRecipientAsync();
        var (id, grain, view) = await f.NewHeldEscrowAsync(recipient);
        int Reminders(string tag) => f.Emails.Sent.Count(m => m.Tag == tag && m.Metadata!["escrow_id"] == id.ToString("D"));

        f.Clock.SetUtcNow(view.CreatedAt + TimeSpan.FromHours(12));
        await grain.WakeAsync();
        await grain.WakeAsync();
        f.Clock.SetUtcNow(view.CreatedAt + TimeSpan.FromHours(18));
        await grain.WakeAsync();
        await grain.WakeAsync();

        Assert.Equal(1, Reminders("deadline-reminder-50"));
        Assert.Equal(1, Reminders("deadline-reminder-75"));
        Assert.All(f.Emails.Sent.Where(m => m.Tag!.StartsWith("deadline-reminder", StringComparison.Ordinal) && m.Metadata!["escrow_id"] == id.ToString("D")),
            m => Assert.StartsWith("reply+", m.ReplyTo, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_recipient_without_payouts_waits_in_pending_user_setup_and_is_paid_when_payouts_are_enabled()
    {
        var recipient = await f.NewRecipientAsync(payoutsEnabled: false);
        var link = await f.Grains.GetGrain<IRecipientGrain>(recipient).CreateOnboardingLinkAsync("https://r.invalid", "https://b.invalid");
        var (_, grain, _) = await f.NewHeldEscrowAsync(recipient);

        await grain.AcceptReplyAsync(new ReplyReceived(f.Clock.GetUtcNow(), "platform", null));
        var waiting = (await grain.GetAsync())!;
        Assert.Equal("pending_user_setup", waiting.Status);
        Assert.NotNull(waiting.ChargeId);
        Assert.Null(waiting.TransferId);

        f.Payments.AccountsEnabled[link.AccountId] = true;
        await f.Grains.GetGrain<IRecipientGrain>(recipient).AccountUpdatedAsync(link.AccountId, true);

        var released = await WaitForAsync(grain, "released");
        Assert.Single(f.Payments.Transfers, t => t.Id == released.TransferId);
    }

    [Fact]
    public async Task A_declined_card_keeps_the_escrow_without_taking_the_slot_and_the_same_create_with_another_card_holds_it()
    {
        var recipient = await f.NewRecipientAsync(dailyLimit: 1);
        var id = Guid.NewGuid();
        CreateEscrow Create(string? card) => new(recipient, "sender@example.com", TimeSpan.FromHours(24), "Subject", "A message of some length.", card, "EF56");
        var grain = f.Grains.GetGrain<IEscrowGrain>(id);

        var declined = await grain.CreateAsync(Create("pm_card_chargeDeclined"));
        Assert.Equal(("awaiting_payment", "card_declined"), (declined.View!.Status, declined.View.LastPaymentError));
        Assert.NotNull(declined.View.PaymentIntentId);
        Assert.NotNull(declined.View.ClientSecret);
        // Only an authorised payment takes a slot: the day's only one is still free for another create.
        var other = await f.Grains.GetGrain<IEscrowGrain>(Guid.NewGuid()).CreateAsync(Create(null));
        Assert.Equal("awaiting_payment", other.View!.Status);

        var held = await grain.CreateAsync(Create("pm_card_visa"));
        Assert.Equal("held", held.View!.Status);
        Assert.Equal(declined.View.PaymentIntentId, held.View.PaymentIntentId);
        await Eventually.UntilAsync(() => Task.FromResult(f.Emails.Sent.Any(m => m.Metadata!["escrow_id"] == id.ToString("D") && m.Tag == "new-message")), "the new-message e-mail");
        Assert.Single(f.Emails.Sent, m => m.Metadata!["escrow_id"] == id.ToString("D") && m.Tag == "new-message");
    }
}
