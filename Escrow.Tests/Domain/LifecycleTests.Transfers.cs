namespace Escrow.Tests.Domain;

// Paying the recipient: transfers, their failures and retries, payout setup, and transfers reported by Stripe.
public sealed partial class LifecycleTests
{
    [Fact]
    public void Transfer_failures_back_off_exponentially_until_exhausted_then_alert_with_no_next_attempt()
    {
        var policy = EscrowPolicy.Default.TransferRetry;
        var s = AnEscrow.Captured();
        var now = s.StatusChangedAt.AddMinutes(1);
        var expectedDelays = new List<TimeSpan>();
        var actualDelays = new List<TimeSpan>();
        for (var failure = 1; failure <= policy.MaxAttempts; failure++)
        {
            s = s.Then(new TransferRejected(s.EffectId(EffectKind.TransferShare), "balance_insufficient", Permanent: false), now);
            Assert.Equal(EscrowStatus.TransferFailed, s.Status);
            Assert.Equal(failure, s.TransferFailures);
            Assert.False(s.Has(EffectKind.TransferShare));
            if (failure == policy.MaxAttempts)
            {
                break;
            }
            expectedDelays.Add(TimeSpan.FromMinutes(Math.Min(Math.Pow(2, failure - 1), 360)));
            actualDelays.Add(s.NextTransferAttemptAt!.Value - now);
            Assert.False(s.NeedsOperator);
            Assert.Empty(EscrowMachine.DueCommands(s, s.NextTransferAttemptAt.Value.AddTicks(-1)));
            now = s.NextTransferAttemptAt.Value;
            s = s.Then(Assert.Single(EscrowMachine.DueCommands(s, now)), now);
            Assert.Equal(EscrowStatus.Processing, s.Status);
            Assert.True(s.Has(EffectKind.TransferShare));
        }
        Assert.Equal(expectedDelays, actualDelays);
        Assert.Null(s.NextTransferAttemptAt);
        Assert.True(s.NeedsOperator);
        Assert.Equal("balance_insufficient", s.LastError);
        var alert = Assert.Single(s.Outbox, e => e.Kind == EffectKind.RaiseAlert);
        Assert.Equal(("transfer_retries_exhausted", "critical"), (alert.Alert!.Name, alert.Alert.Severity));
        Assert.Empty(EscrowMachine.DueCommands(s, now.AddYears(1)));
        Assert.Equal("not_due_yet", s.Decide(new TransferRetryDue(), now.AddYears(1)).Rejection?.Code);
    }

    [Fact]
    public void Operator_retry_of_a_failed_transfer_starts_a_new_transfer()
    {
        var s = AnEscrow.TransferFailed();
        s = s.Then(new OperatorRetryTransfer(), s.StatusChangedAt.AddSeconds(1));
        Assert.Equal(EscrowStatus.Processing, s.Status);
        Assert.Single(s.Outbox, e => e.Kind == EffectKind.TransferShare);
        Assert.False(s.NeedsOperator);
        Assert.Null(s.NextTransferAttemptAt);
    }

    [Fact]
    public void Every_transfer_rejection_moves_the_transfer_key_on_because_Stripe_replays_a_saved_failure()
    {
        var s = AnEscrow.Captured();
        Assert.Equal(0, s.TransferKeyAttempt);
        var transient = s.Then(new TransferRejected(s.EffectId(EffectKind.TransferShare), "api_error", Permanent: false), s.StatusChangedAt.AddSeconds(1));
        Assert.Equal(1, transient.TransferKeyAttempt);
        var permanent = s.Then(new TransferRejected(s.EffectId(EffectKind.TransferShare), "account_invalid", Permanent: true), s.StatusChangedAt.AddSeconds(1));
        Assert.Equal(1, permanent.TransferKeyAttempt);
        Assert.Equal("account_invalid", permanent.LastError);
    }

    [Fact]
    public void Transfer_result_for_an_unknown_effect_is_rejected()
    {
        var s = AnEscrow.Captured();
        var now = s.StatusChangedAt.AddSeconds(1);
        Assert.Equal("unknown_effect", s.Decide(new Transferred(404, "tr_x", "acct_x", false), now).Rejection?.Code);
        Assert.Equal("unknown_effect", s.Decide(new TransferRejected(404, "x", false), now).Rejection?.Code);
        Assert.Equal("unknown_effect", s.Decide(new RecipientNotReady(404), now).Rejection?.Code);
        Assert.Equal("unknown_effect", s.Decide(new Captured(404, "ch_x"), now).Rejection?.Code);
    }

    /// <summary>
    /// An effect result must complete an effect of its own kind. A Transferred naming the capture effect would
    /// release an escrow whose payment was never captured (a transfer without a charge), which breaks an invariant.
    /// </summary>
    [Fact]
    public void Transferred_naming_the_capture_effect_is_rejected_and_pays_nothing()
    {
        var s = AnEscrow.Processing();
        var d = s.Decide(new Transferred(s.EffectId(EffectKind.CapturePayment), "tr_x", "acct_x", Adopted: false), s.StatusChangedAt.AddSeconds(1));
        Assert.Equal("unknown_effect", d.Rejection?.Code);
        Assert.Equal(EscrowStatus.Processing, d.State.Status);
        Assert.Null(d.State.TransferId);
    }

    [Fact]
    public void Recipient_not_ready_waits_for_payout_setup_then_payouts_enabled_starts_the_transfer()
    {
        var s = AnEscrow.Captured();
        s = s.Then(new RecipientNotReady(s.EffectId(EffectKind.TransferShare)), s.StatusChangedAt.AddSeconds(1));
        Assert.Equal(EscrowStatus.PendingUserSetup, s.Status);
        Assert.True(s.Has(EffectKind.AwaitPayoutSetup));
        Assert.True(s.HasEmail(EmailKind.PendingPayoutSetup));
        Assert.False(s.Has(EffectKind.TransferShare));

        s = s.Then(new RecipientPayoutsEnabled(), s.StatusChangedAt.AddHours(5));
        Assert.Equal(EscrowStatus.Processing, s.Status);
        Assert.Single(s.Outbox, e => e.Kind == EffectKind.TransferShare);
        Assert.False(s.Has(EffectKind.AwaitPayoutSetup));
        Assert.Equal("payouts_enabled", s.History[^1].Event);
    }

    [Fact]
    public void An_escrow_waiting_for_payout_setup_asks_the_recipient_again_once_a_period_on_its_own()
    {
        var s = AnEscrow.Captured();
        var waitingSince = s.StatusChangedAt.AddSeconds(1);
        s = s.Then(new RecipientNotReady(s.EffectId(EffectKind.TransferShare)), waitingSince);
        var period = AnEscrow.Machine.Policy.PayoutCheckPeriod;
        Assert.Equal(waitingSince + period, s.PayoutCheckAt);
        Assert.Equal(waitingSince, EscrowMachine.NextDueAt(s));

        // The recipient has the escrow on its list: the effect is done, and the escrow's own check is the next due time.
        while (!s.Outbox.IsEmpty)
        {
            s = s.Then(new EffectCompleted(s.Outbox[0].Id), waitingSince.AddSeconds(1));
        }
        Assert.Equal(waitingSince + period, EscrowMachine.NextDueAt(s));
        Assert.Empty(EscrowMachine.DueCommands(s, waitingSince + period - TimeSpan.FromTicks(1)));
        Assert.Equal("not_due_yet", s.Decide(new PayoutCheckDue(), waitingSince.AddHours(1)).Rejection?.Code);

        var checkedAt = waitingSince + period;
        var due = Assert.IsType<PayoutCheckDue>(Assert.Single(EscrowMachine.DueCommands(s, checkedAt)));
        var historyBefore = s.History.Length;
        s = s.Then(due, checkedAt);
        Assert.Equal(EscrowStatus.PendingUserSetup, s.Status);
        Assert.Single(s.Outbox, e => e.Kind == EffectKind.AwaitPayoutSetup);
        Assert.Equal(checkedAt + period, s.PayoutCheckAt);
        Assert.Equal(historyBefore, s.History.Length);

        // Due again while the effect is still pending: the check moves on, the effect is not doubled.
        s = s.Then(new PayoutCheckDue(), checkedAt + period);
        Assert.Single(s.Outbox, e => e.Kind == EffectKind.AwaitPayoutSetup);

        // Once payouts are enabled the check is gone.
        s = s.Then(new RecipientPayoutsEnabled(), checkedAt + period + TimeSpan.FromMinutes(1));
        Assert.Null(s.PayoutCheckAt);
        Assert.Empty(EscrowMachine.DueCommands(s, checkedAt + (period * 10)));
    }

    [Fact]
    public void An_operator_refund_after_a_transfer_whose_answer_was_lost_is_not_made_when_the_transfer_turns_up()
    {
        // The transfer's answer was lost (Stripe made it): the escrow believes it failed, and an operator refunds.
        var s = AnEscrow.TransferFailed().Then(new OperatorRefund("sender asked"), AnEscrow.T0.AddHours(30));
        Assert.Equal(EscrowStatus.RefundPending, s.Status);
        Assert.True(s.Has(EffectKind.RefundPayment));
        Assert.NotNull(s.FirstTransferAttemptAt);

        // The refund effect reads the transfer group first and reports the transfer it finds.
        var share = s.Split.RecipientShare.Minor;
        s = s.Then(new TransferReported("tr_lost", share, "eur", AnEscrow.AccountId, AnEscrow.AccountId), AnEscrow.T0.AddHours(30).AddSeconds(1));
        Assert.Equal(EscrowStatus.Released, s.Status);
        Assert.Equal("tr_lost", s.TransferId);
        Assert.False(s.Has(EffectKind.RefundPayment));
        Assert.Contains(s.Outbox, e => e.Kind == EffectKind.RaiseAlert && e.Alert?.Name == "refund_not_made");
        Assert.True(s.HasEmail(EmailKind.PayoutSent));

        // A transfer of another amount is not adopted.
        var other = AnEscrow.TransferFailed().Then(new OperatorRefund("sender asked"), AnEscrow.T0.AddHours(30));
        Assert.Equal("transfer_mismatch", other.Decide(new TransferReported("tr_x", share + 1, "eur", AnEscrow.AccountId, AnEscrow.AccountId), AnEscrow.T0.AddHours(31)).Rejection?.Code);
    }

    [Fact]
    public void A_transfer_reported_after_the_payment_was_refunded_raises_a_critical_alert()
    {
        var s = AnEscrow.TransferFailed().Then(new OperatorRefund("sender asked"), AnEscrow.T0.AddHours(30));
        s = s.Then(new PaymentRefunded(s.EffectId(EffectKind.RefundPayment), "re_1"), AnEscrow.T0.AddHours(30).AddSeconds(1));
        Assert.Equal(EscrowStatus.Refunded, s.Status);
        s = s.Then(new TransferReported("tr_late", s.Split.RecipientShare.Minor, "eur", AnEscrow.AccountId, AnEscrow.AccountId), AnEscrow.T0.AddHours(31));
        Assert.Equal(EscrowStatus.Refunded, s.Status);
        Assert.Contains(s.Outbox, e => e.Kind == EffectKind.RaiseAlert && e.Alert?.Name == "transfer_after_refund");
    }

    [Fact]
    public void Released_escrow_reversal_of_its_own_transfer_raises_an_alert()
    {
        var s = AnEscrow.Released();
        var d = s.Decide(new TransferReversed(AnEscrow.TransferId, 11_25), s.StatusChangedAt.AddDays(1));
        Assert.True(d.Accepted);
        Assert.Contains(d.State.Outbox, e => e.Kind == EffectKind.RaiseAlert && e.Alert?.Name == "transfer_reversed");
        Assert.Equal("not_allowed_in_status", s.Decide(new TransferReversed("tr_other", 11_25), s.StatusChangedAt.AddDays(1)).Rejection?.Code);
    }

    [Fact]
    public void Second_transfer_with_another_id_is_rejected_and_pays_nothing()
    {
        var s = AnEscrow.Released();
        var d = s.Decide(new Transferred(99, "tr_second", "acct_1", false), s.StatusChangedAt.AddMinutes(1));
        Assert.Equal("not_allowed_in_status", d.Rejection?.Code);
        Assert.Equal(AnEscrow.TransferId, d.State.TransferId);
    }

    [Fact]
    public void The_machine_applies_its_own_transfer_retry_policy()
    {
        var machine = new EscrowMachine(EscrowPolicy.Default with { TransferRetry = new RetryPolicy(2, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(15)) });
        var s = AnEscrow.Captured();
        var now = s.StatusChangedAt.AddSeconds(1);
        s = machine.Decide(s, new TransferRejected(s.EffectId(EffectKind.TransferShare), "x", false), now).State;
        Assert.Equal(now.AddSeconds(10), s.NextTransferAttemptAt);
        s = machine.Decide(s, new TransferRetryDue(), now.AddSeconds(10)).State;
        s = machine.Decide(s, new TransferRejected(s.EffectId(EffectKind.TransferShare), "x", false), now.AddSeconds(11)).State;
        Assert.Equal(EscrowStatus.TransferFailed, s.Status);
        Assert.Null(s.NextTransferAttemptAt);
        Assert.True(s.NeedsOperator);
    }
}
