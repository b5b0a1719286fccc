namespace Escrow.Tests.Domain;

public sealed class LifecycleTests
{
    private static readonly DateTimeOffset T0 = AnEscrow.T0;

    [Fact]
    public void Create_awaits_payment_with_a_create_payment_intent_effect_and_the_split_fixed()
    {
        var s = AnEscrow.AwaitingPayment();
        Assert.Equal(EscrowStatus.AwaitingPayment, s.Status);
        Assert.Equal(PendingEffectKinds(EffectKind.CreatePaymentIntent), s.Outbox.Select(e => e.Kind).ToArray());
        Assert.Equal(T0 + AnEscrow.Window, s.Deadline);
        Assert.Equal(T0 + AnEscrow.Window + AnEscrow.Grace, s.ReplyDeadline);
        Assert.Equal(T0 + AnEscrow.UnpaidExpiry, s.UnpaidExpiresAt);
        Assert.Equal(Money.Eur(11_25), s.Split.RecipientShare);
        Assert.Equal(Money.Eur(3_75), s.Split.PlatformFee);
        Assert.Equal(new[] { "created" }, s.Events());
        EscrowInvariants.Check(s);
    }

    [Fact]
    public void Happy_path_holds_replies_captures_transfers_and_releases_with_history_in_order()
    {
        var s = AnEscrow.AwaitingPayment();
        s = s.Then(new PaymentIntentCreated(s.EffectId(EffectKind.CreatePaymentIntent), "pi_1", "secret", "requires_capture", 15_00, "eur"), T0.AddMinutes(1));
        Assert.Equal(EscrowStatus.Held, s.Status);
        Assert.Equal("pi_1", s.PaymentIntentId);
        Assert.Equal(T0.AddMinutes(1), s.HeldAt);
        Assert.True(s.HasEmail(EmailKind.NewMessage));
        Assert.True(s.HasEmail(EmailKind.PaymentReceipt));
        Assert.False(s.Has(EffectKind.CreatePaymentIntent));

        s = s.Then(new AcceptReply(T0.AddHours(3), "email", "Here are the slides."), T0.AddHours(3));
        Assert.Equal(EscrowStatus.Processing, s.Status);
        Assert.True(s.HasEmail(EmailKind.ReplyForwarded));
        Assert.Equal("Here are the slides.", s.Outbox.Single(e => e.Email == EmailKind.ReplyForwarded).Payload);

        s = s.Then(new Captured(s.EffectId(EffectKind.CapturePayment), "ch_1"), T0.AddHours(3).AddSeconds(5));
        Assert.Equal(EscrowStatus.Processing, s.Status);
        Assert.Equal("ch_1", s.ChargeId);
        Assert.False(s.Has(EffectKind.CapturePayment));
        Assert.True(s.Has(EffectKind.TransferShare));

        s = s.Then(new Transferred(s.EffectId(EffectKind.TransferShare), "tr_1", "acct_1", Adopted: false), T0.AddHours(3).AddSeconds(10));
        Assert.Equal(EscrowStatus.Released, s.Status);
        Assert.Equal("tr_1", s.TransferId);
        Assert.Equal("acct_1", s.RecipientAccountId);
        Assert.True(s.HasEmail(EmailKind.PayoutSent));
        Assert.False(s.Has(EffectKind.TransferShare));
        Assert.Equal(new[] { "created", "payment_intent_created", "authorised", "reply_accepted", "captured", "transferred" }, s.Events());
        Assert.Equal(Enumerable.Range(1, 6), s.History.Select(h => h.Seq));
        Assert.Equal(s.Split.RecipientShare.Minor, s.History[^1].AmountMinor);
        Assert.True(s.History.Zip(s.History.Skip(1)).All(p => p.First.At <= p.Second.At));
    }

    [Fact]
    public void Payment_intent_that_needs_a_payment_method_stays_awaiting_payment_until_authorised()
    {
        var s = AnEscrow.AwaitingPayment();
        s = s.Then(new PaymentIntentCreated(s.EffectId(EffectKind.CreatePaymentIntent), "pi_1", "secret", "requires_payment_method", 15_00, "EUR"), T0.AddSeconds(1));
        Assert.Equal(EscrowStatus.AwaitingPayment, s.Status);
        Assert.Equal("secret", s.ClientSecret);
        s = s.Then(new PaymentAuthorised("pi_1", 15_00, "EUR"), T0.AddMinutes(2));
        Assert.Equal(EscrowStatus.Held, s.Status);
    }

    [Fact]
    public void Authorisation_of_another_payment_intent_is_rejected_and_changes_nothing()
    {
        var s = AnEscrow.AwaitingPayment();
        s = s.Then(new PaymentIntentCreated(s.EffectId(EffectKind.CreatePaymentIntent), "pi_1", "secret", "requires_payment_method", 15_00, "EUR"), T0.AddSeconds(1));
        var d = s.Decide(new PaymentAuthorised("pi_other", 15_00, "EUR"), T0.AddMinutes(2));
        d.AssertRefused("payment_intent_mismatch", unchanged: s);
    }

    [Fact]
    public void Authorisation_of_the_wrong_amount_is_rejected_and_changes_nothing()
    {
        var s = AnEscrow.AwaitingPayment();
        var d = s.Decide(new PaymentAuthorised("pi_1", 14_99, "EUR"), T0.AddMinutes(2));
        d.AssertRefused("amount_mismatch", unchanged: s);
        var usd = s.Decide(new PaymentAuthorised("pi_1", 15_00, "USD"), T0.AddMinutes(2));
        Assert.Equal("amount_mismatch", usd.Rejection?.Code);
    }

    /// <summary>
    /// A rejection changes nothing (STYLE 2). A created PaymentIntent that is already authorised for the wrong
    /// amount must be rejected with the input state, not with a state that already recorded the intent.
    /// </summary>
    [Fact]
    public void Payment_intent_created_with_the_wrong_amount_is_rejected_and_changes_nothing()
    {
        var s = AnEscrow.AwaitingPayment();
        var d = s.Decide(new PaymentIntentCreated(s.EffectId(EffectKind.CreatePaymentIntent), "pi_1", "secret", "requires_capture", 99_99, "EUR"), T0.AddSeconds(1));
        Assert.Equal("amount_mismatch", d.Rejection?.Code);
        Assert.Equal(s.Outbox.ToArray(), d.State.Outbox.ToArray());
        Assert.Equal(s.History.ToArray(), d.State.History.ToArray());
        Assert.Null(d.State.PaymentIntentId);
        Assert.True(ReferenceEquals(s, d.State) || s.Equals(d.State));
    }

    [Fact]
    public void Payment_intent_created_for_an_unknown_effect_is_rejected()
    {
        var s = AnEscrow.AwaitingPayment();
        var d = s.Decide(new PaymentIntentCreated(404, "pi_1", "secret", "requires_capture", 15_00, "EUR"), T0.AddSeconds(1));
        d.AssertRefused("unknown_effect", unchanged: s);
    }

    [Fact]
    public void Reply_at_deadline_plus_grace_exactly_is_accepted_and_marks_the_grace_used()
    {
        var s = AnEscrow.Held();
        var d = s.Decide(new AcceptReply(s.ReplyDeadline, "email"), s.ReplyDeadline);
        Assert.True(d.Accepted);
        Assert.Equal(EscrowStatus.Processing, d.State.Status);
        Assert.True(d.State.Reply!.GraceUsed);
        Assert.False(d.State.HasEmail(EmailKind.ReplyForwarded));
    }

    [Theory]
    [InlineData(1L)] // decided as it comes
    [InlineData(TimeSpan.TicksPerMinute)] // decided a minute later
    public void Reply_one_tick_after_deadline_plus_grace_is_rejected_as_too_late(long decidedTicksAfterReplyDeadline)
    {
        var s = AnEscrow.Held();
        var d = s.Decide(new AcceptReply(s.ReplyDeadline.AddTicks(1), "email"), s.ReplyDeadline.AddTicks(decidedTicksAfterReplyDeadline));
        d.AssertRefused("reply_too_late", unchanged: s);
    }

    [Fact]
    public void Reply_at_the_deadline_itself_does_not_use_the_grace()
    {
        var s = AnEscrow.Held();
        var d = s.Decide(new AcceptReply(s.Deadline, "email"), s.Deadline);
        Assert.False(d.State.Reply!.GraceUsed);
    }

    [Fact]
    public void Second_reply_is_rejected_and_captures_nothing_more()
    {
        var s = AnEscrow.Processing();
        var d = s.Decide(new AcceptReply(s.StatusChangedAt.AddMinutes(1), "email", "again"), s.StatusChangedAt.AddMinutes(1));
        Assert.Equal("already_replied", d.Rejection?.Code);
        Assert.Single(d.State.Outbox, e => e.Kind == EffectKind.CapturePayment);
    }

    [Fact]
    public void Deadline_passed_at_the_reply_deadline_requests_a_refund_permit()
    {
        var s = AnEscrow.Held();
        var d = s.Decide(new DeadlinePassed(), s.ReplyDeadline);
        Assert.True(d.Accepted);
        Assert.Equal(EscrowStatus.RefundPending, d.State.Status);
        Assert.True(d.State.Has(EffectKind.RequestRefundPermit));
        Assert.False(d.State.Has(EffectKind.CancelPaymentIntent));
    }

    [Fact]
    public void Deadline_passed_one_tick_before_the_reply_deadline_is_not_reached()
    {
        var s = AnEscrow.Held();
        var d = s.Decide(new DeadlinePassed(), s.ReplyDeadline.AddTicks(-1));
        d.AssertRefused("deadline_not_reached", unchanged: s);
    }

    [Fact]
    public void Granted_permit_cancels_the_payment_intent_and_the_cancel_refunds_with_emails()
    {
        var s = AnEscrow.RefundPending();
        var at = s.ReplyDeadline;
        s = s.Then(new RefundPermitAnswered(s.EffectId(EffectKind.RequestRefundPermit), RefundPermit.Granted), at.AddSeconds(1));
        Assert.Equal(EscrowStatus.RefundPending, s.Status);
        Assert.True(s.Has(EffectKind.CancelPaymentIntent));
        Assert.False(s.Has(EffectKind.RequestRefundPermit));

        s = s.Then(new PaymentIntentCancelled(s.EffectId(EffectKind.CancelPaymentIntent)), at.AddSeconds(2));
        Assert.Equal(EscrowStatus.Refunded, s.Status);
        Assert.True(s.HasEmail(EmailKind.RefundIssued));
        Assert.True(s.HasEmail(EmailKind.MissedOpportunity));
        Assert.False(s.Has(EffectKind.CancelPaymentIntent));
        Assert.Null(s.ChargeId);
        Assert.Equal(new[] { "refund_permit_granted", "payment_intent_cancelled" }, s.Events()[^2..]);
        Assert.Null(EscrowMachine.NextDueAt(s with { Outbox = [] }));
    }

    [Fact]
    public void Denied_permit_schedules_a_retry_that_becomes_due_only_after_the_delay()
    {
        var s = AnEscrow.RefundPending();
        var at = s.ReplyDeadline.AddSeconds(1);
        s = s.Then(new RefundPermitAnswered(s.EffectId(EffectKind.RequestRefundPermit), RefundPermit.Denied), at);
        var due = at + EscrowPolicy.Default.PermitRetryDelay;
        Assert.Equal(due, s.NextPermitRequestAt);
        Assert.False(s.Has(EffectKind.RequestRefundPermit));
        Assert.Empty(EscrowMachine.DueCommands(s, due.AddTicks(-1)));
        Assert.Equal("not_due_yet", s.Decide(new RefundPermitRetryDue(), due.AddTicks(-1)).Rejection?.Code);

        var command = Assert.Single(EscrowMachine.DueCommands(s, due));
        Assert.IsType<RefundPermitRetryDue>(command);
        s = s.Then(command, due);
        Assert.True(s.Has(EffectKind.RequestRefundPermit));
        Assert.Null(s.NextPermitRequestAt);
        Assert.Equal("already_done", s.Decide(new RefundPermitRetryDue(), due.AddMinutes(5)).Rejection?.Code);
    }

    [Fact]
    public void Permit_needing_approval_raises_an_alert_and_waits_for_the_operator_who_then_cancels()
    {
        var s = AnEscrow.RefundPending();
        var at = s.ReplyDeadline.AddSeconds(1);
        s = s.Then(new RefundPermitAnswered(s.EffectId(EffectKind.RequestRefundPermit), RefundPermit.NeedsApproval), at);
        Assert.True(s.RefundAwaitingApproval);
        var alert = Assert.Single(s.Outbox, e => e.Kind == EffectKind.RaiseAlert);
        Assert.Equal(AlertKind.RefundNeedsApproval, alert.Alert);
        Assert.False(s.Has(EffectKind.CancelPaymentIntent));
        Assert.Empty(EscrowMachine.DueCommands(s, at.AddDays(1)));

        s = s.Then(new OperatorApproveRefund(), at.AddMinutes(10));
        Assert.False(s.RefundAwaitingApproval);
        Assert.True(s.RefundApproved);
        Assert.True(s.Has(EffectKind.CancelPaymentIntent));
        Assert.Equal("not_awaiting_approval", s.Decide(new OperatorApproveRefund(), at.AddMinutes(11)).Rejection?.Code);
    }

    [Fact]
    public void Permit_answer_for_an_unknown_effect_is_rejected()
    {
        var s = AnEscrow.RefundPending();
        var d = s.Decide(new RefundPermitAnswered(404, RefundPermit.Granted), s.ReplyDeadline.AddSeconds(1));
        d.AssertRefused("unknown_effect", unchanged: s);
    }

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
    public void A_reminder_first_due_after_the_deadline_is_not_sent_since_it_would_quote_a_past_deadline()
    {
        var s = AnEscrow.Held();
        var inGrace = s.Deadline.AddMinutes(1);
        Assert.True(inGrace < s.ReplyDeadline);
        var due = Assert.Single(EscrowMachine.DueCommands(s, inGrace));
        s = s.Then(due, inGrace);
        Assert.Equal(EscrowStatus.Held, s.Status);
        Assert.True(s.Reminder50Sent && s.Reminder75Sent);
        Assert.False(s.HasEmail(EmailKind.DeadlineReminder75));
        Assert.False(s.HasEmail(EmailKind.DeadlineReminder50));
        Assert.Equal("reminders_skipped_past_deadline", s.History[^1].Event);
        Assert.Empty(EscrowMachine.DueCommands(s, inGrace.AddSeconds(1)));
        Assert.IsType<DeadlinePassed>(Assert.Single(EscrowMachine.DueCommands(s, s.ReplyDeadline)));
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
    public void An_authorisation_reported_after_the_escrow_was_cancelled_without_knowing_its_payment_intent_is_cancelled()
    {
        // The create's answer was lost (no PaymentIntent id kept), then the escrow was cancelled; Stripe had authorised the card.
        var created = EscrowMachine.Create(AnEscrow.New(), AnEscrow.T0);
        Assert.Null(created.PaymentIntentId);
        var cancelled = created.Then(new OperatorRefund("sender asked"), AnEscrow.T0.AddSeconds(10));
        Assert.Equal(EscrowStatus.Cancelled, cancelled.Status);
        Assert.False(cancelled.Has(EffectKind.CancelPaymentIntent));

        var at = AnEscrow.T0.AddMinutes(2);
        var s = cancelled.Then(new PaymentAuthorised("pi_stray", cancelled.Amount.Minor, cancelled.Amount.Currency.Code), at);
        Assert.Equal(EscrowStatus.Cancelled, s.Status);
        Assert.Equal("pi_stray", s.PaymentIntentId);
        Assert.True(s.Has(EffectKind.CancelPaymentIntent));
        Assert.Equal("stray_authorisation_cancelled", s.History[^1].Event);

        // The same event again changes nothing; the cancel completes as for any cancelled escrow.
        Assert.False(s.Decide(new PaymentAuthorised("pi_stray", s.Amount.Minor, s.Amount.Currency.Code), at.AddMinutes(1)).Accepted);
        s = s.Then(new PaymentIntentCancelled(s.EffectId(EffectKind.CancelPaymentIntent)), at.AddMinutes(1));
        Assert.False(s.Has(EffectKind.CancelPaymentIntent));
    }

    [Fact]
    public void A_declined_card_keeps_the_escrow_awaiting_payment_with_its_payment_intent_its_slot_and_no_email()
    {
        var s = AnEscrow.AwaitingPayment();
        s = s.Then(new PaymentFailed("card_declined", s.EffectId(EffectKind.CreatePaymentIntent), AnEscrow.PaymentIntentId, "pi_secret"), T0.AddMinutes(1));
        Assert.Equal(EscrowStatus.AwaitingPayment, s.Status);
        Assert.False(s.IsTerminal);
        Assert.Empty(s.Outbox);
        Assert.Equal("card_declined", s.LastPaymentError);
        Assert.Equal(AnEscrow.PaymentIntentId, s.PaymentIntentId);
        Assert.Equal("pi_secret", s.ClientSecret);
        Assert.Equal(("payment_declined", "card_declined"), (s.History[^1].Event, s.History[^1].Detail));
        // The webhook of the same decline changes nothing; one for another PaymentIntent is refused.
        Assert.Equal("already_done", s.Decide(new PaymentFailed("card_declined", PaymentIntentId: AnEscrow.PaymentIntentId), T0.AddMinutes(2)).Rejection?.Code);
        Assert.Equal("payment_intent_mismatch", s.Decide(new PaymentFailed("expired_card", PaymentIntentId: "pi_other"), T0.AddMinutes(2)).Rejection?.Code);
        Assert.Equal(s.UnpaidExpiresAt, EscrowMachine.NextDueAt(s));
    }

    [Fact]
    public void After_a_decline_another_card_confirms_the_same_payment_intent_and_its_authorisation_holds_the_escrow()
    {
        var s = AnEscrow.Declined();
        Assert.Equal("already_done", s.Decide(new RetryPayment("pm_card_visa"), T0.AddMinutes(2)).Rejection?.Code);
        s = s.Then(new RetryPayment("pm_card_mastercard"), T0.AddMinutes(2));
        var confirm = Assert.Single(s.Outbox);
        Assert.Equal((EffectKind.ConfirmPayment, "pm_card_mastercard"), (confirm.Kind, confirm.Payload));
        Assert.Equal("already_done", s.Decide(new RetryPayment("pm_card_amex"), T0.AddMinutes(2)).Rejection?.Code);

        // Declined again: still awaiting, the retry done.
        var again = s.Then(new PaymentFailed("insufficient_funds", confirm.Id, AnEscrow.PaymentIntentId), T0.AddMinutes(3));
        Assert.Equal((EscrowStatus.AwaitingPayment, "insufficient_funds", 2), (again.Status, again.LastPaymentError, again.PaymentDeclines));
        Assert.Empty(again.Outbox);

        var held = s.Then(new PaymentAuthorised(AnEscrow.PaymentIntentId, s.Amount.Minor, s.Amount.Currency.Code, confirm.Id), T0.AddMinutes(3));
        Assert.Equal(EscrowStatus.Held, held.Status);
        Assert.False(held.Has(EffectKind.ConfirmPayment));
        Assert.True(held.HasEmail(EmailKind.NewMessage));
    }

    [Fact]
    public void A_declined_escrow_fails_only_at_the_unpaid_expiry_cancelling_its_payment_intent_and_freeing_the_slot()
    {
        var s = AnEscrow.Declined();
        Assert.Equal("not_due_yet", s.Decide(new UnpaidExpired(), s.UnpaidExpiresAt.AddSeconds(-1)).Rejection?.Code);
        s = s.Then(new UnpaidExpired(), s.UnpaidExpiresAt);
        Assert.Equal(EscrowStatus.PaymentFailed, s.Status);
        Assert.True(s.IsTerminal);
        Assert.Equal(new[] { EffectKind.CancelPaymentIntent, EffectKind.ReleaseDailySlot }, s.Outbox.Select(e => e.Kind).ToArray());
        Assert.Equal(("payment_failed", "card_declined"), (s.History[^1].Event, s.History[^1].Detail));
        Assert.Equal("already_done", s.Decide(new PaymentFailed("card_declined"), s.UnpaidExpiresAt.AddMinutes(1)).Rejection?.Code);
        Assert.False(s.HasEmail(EmailKind.NewMessage));
    }

    [Fact]
    public void Declines_are_bounded_a_retry_after_the_last_is_refused()
    {
        var s = AnEscrow.Declined();
        for (var i = 1; i < EscrowState.PaymentDeclinesMax; i++)
        {
            s = s.Then(new RetryPayment($"pm_card_{i}"), T0.AddMinutes(2 + i));
            s = s.Then(new PaymentFailed("card_declined", s.EffectId(EffectKind.ConfirmPayment)), T0.AddMinutes(2 + i));
        }
        Assert.Equal(EscrowState.PaymentDeclinesMax, s.PaymentDeclines);
        Assert.Equal("too_many_payment_attempts", s.Decide(new RetryPayment("pm_card_last"), T0.AddMinutes(30)).Rejection?.Code);
        Assert.Equal("already_done", s.Decide(new PaymentFailed("expired_card"), T0.AddMinutes(30)).Rejection?.Code);
    }

    [Fact]
    public void Unpaid_escrow_expires_only_at_or_after_its_unpaid_expiry()
    {
        var s = AnEscrow.AwaitingPayment();
        Assert.Equal("not_due_yet", s.Decide(new UnpaidExpired(), s.UnpaidExpiresAt.AddTicks(-1)).Rejection?.Code);
        Assert.Empty(EscrowMachine.DueCommands(s, s.UnpaidExpiresAt.AddTicks(-1)));
        Assert.IsType<UnpaidExpired>(Assert.Single(EscrowMachine.DueCommands(s, s.UnpaidExpiresAt)));

        var cancelled = s.Then(new UnpaidExpired(), s.UnpaidExpiresAt);
        Assert.Equal(EscrowStatus.Cancelled, cancelled.Status);
        Assert.Equal(new[] { EffectKind.ReleaseDailySlot }, cancelled.Outbox.Select(e => e.Kind).ToArray());
        Assert.True(s.Then(new UnpaidExpired(), s.UnpaidExpiresAt.AddHours(1)).IsTerminal);
    }

    [Fact]
    public void Unpaid_expiry_after_a_payment_intent_exists_cancels_the_intent()
    {
        var s = AnEscrow.AwaitingPayment();
        s = s.Then(new PaymentIntentCreated(s.EffectId(EffectKind.CreatePaymentIntent), "pi_1", "secret", "requires_payment_method", 15_00, "EUR"), T0.AddSeconds(1));
        s = s.Then(new UnpaidExpired(), s.UnpaidExpiresAt);
        Assert.Equal(EscrowStatus.Cancelled, s.Status);
        Assert.True(s.Has(EffectKind.CancelPaymentIntent));
        Assert.True(s.Has(EffectKind.ReleaseDailySlot));
    }

    [Fact]
    public void Open_dispute_blocks_automatic_commands_until_an_operator_resolves_it()
    {
        var s = AnEscrow.Held();
        s = s.Then(new DisputeOpened("dp_1"), T0.AddHours(1));
        Assert.True(s.DisputeOpen);
        Assert.Contains(s.Outbox, e => e.Kind == EffectKind.RaiseAlert && e.Alert?.Name == "dispute_opened" && e.Detail!.StartsWith("Dispute dp_1 ", StringComparison.Ordinal));
        Assert.Equal("already_done", s.Decide(new DisputeOpened("dp_1"), T0.AddHours(1)).Rejection?.Code);

        var late = s.ReplyDeadline.AddMinutes(1);
        Assert.Empty(EscrowMachine.DueCommands(s, late));
        foreach (EscrowCommand automatic in new EscrowCommand[]
                 {
                     new DeadlinePassed(), new DeadlineReminderDue(EmailKind.DeadlineReminder50), new AcceptReply(T0.AddHours(2), "email"),
                     new UnpaidExpired(), new TransferRetryDue(), new RefundPermitRetryDue(), new RecipientPayoutsEnabled(),
                 })
        {
            var d = s.Decide(automatic, late);
            d.AssertRefused("dispute_open", unchanged: s);
        }

        s = s.Then(new OperatorResolveDispute("won"), late);
        Assert.False(s.DisputeOpen);
        Assert.Equal("no_dispute", s.Decide(new OperatorResolveDispute("again"), late).Rejection?.Code);
        var command = Assert.Single(EscrowMachine.DueCommands(s, late));
        Assert.IsType<DeadlinePassed>(command);
        Assert.Equal(EscrowStatus.RefundPending, s.Then(command, late).Status);
    }

    [Fact]
    public void Open_dispute_still_lets_operators_act()
    {
        var s = AnEscrow.Held().Then(new DisputeOpened("dp_1"), T0.AddHours(1));
        var d = s.Decide(new OperatorRelease("checked by hand"), T0.AddHours(2));
        Assert.True(d.Accepted);
        Assert.Equal(EscrowStatus.Processing, d.State.Status);
    }

    [Fact]
    public void Reminders_at_50_and_75_percent_are_each_sent_once()
    {
        var s = AnEscrow.Held();
        Assert.Equal(T0.AddHours(12), s.Reminder50At);
        Assert.Equal(T0.AddHours(18), s.Reminder75At);
        Assert.Empty(EscrowMachine.DueCommands(s, s.Reminder50At.AddTicks(-1)));
        Assert.Equal("not_due_yet", s.Decide(new DeadlineReminderDue(EmailKind.DeadlineReminder50), s.Reminder50At.AddTicks(-1)).Rejection?.Code);

        var fifty = Assert.IsType<DeadlineReminderDue>(Assert.Single(EscrowMachine.DueCommands(s, s.Reminder50At)));
        Assert.Equal(EmailKind.DeadlineReminder50, fifty.Reminder);
        s = s.Then(fifty, s.Reminder50At);
        Assert.True(s.Reminder50Sent);
        Assert.False(s.Reminder75Sent);
        Assert.Single(s.Outbox, e => e.Email == EmailKind.DeadlineReminder50);
        Assert.Equal("already_done", s.Decide(fifty, s.Reminder50At.AddMinutes(1)).Rejection?.Code);
        Assert.Empty(EscrowMachine.DueCommands(s, s.Reminder75At.AddTicks(-1)));

        var seventyFive = Assert.IsType<DeadlineReminderDue>(Assert.Single(EscrowMachine.DueCommands(s, s.Reminder75At)));
        Assert.Equal(EmailKind.DeadlineReminder75, seventyFive.Reminder);
        s = s.Then(seventyFive, s.Reminder75At);
        Assert.True(s.Reminder75Sent);
        Assert.Single(s.Outbox, e => e.Email == EmailKind.DeadlineReminder75);
        Assert.Equal("already_done", s.Decide(seventyFive, s.Reminder75At.AddMinutes(1)).Rejection?.Code);
        Assert.Empty(EscrowMachine.DueCommands(s, s.ReplyDeadline.AddTicks(-1)));
        Assert.Equal(new[] { "reminder_50", "reminder_75" }, s.Events()[^2..]);
    }

    [Fact]
    public void A_due_75_percent_reminder_marks_both_and_the_50_percent_one_is_never_sent()
    {
        var s = AnEscrow.Held();
        var late = s.Reminder75At.AddMinutes(5);
        var command = Assert.IsType<DeadlineReminderDue>(Assert.Single(EscrowMachine.DueCommands(s, late)));
        Assert.Equal(EmailKind.DeadlineReminder75, command.Reminder);
        s = s.Then(command, late);
        Assert.True(s.Reminder50Sent);
        Assert.True(s.Reminder75Sent);
        Assert.DoesNotContain(s.Outbox, e => e.Email == EmailKind.DeadlineReminder50);
        Assert.Equal("already_done", s.Decide(new DeadlineReminderDue(EmailKind.DeadlineReminder50), late).Rejection?.Code);
        Assert.Empty(EscrowMachine.DueCommands(s, late));
    }

    [Fact]
    public void Due_commands_at_the_reply_deadline_are_the_deadline_not_a_reminder()
    {
        var s = AnEscrow.Held();
        Assert.Empty(EscrowMachine.DueCommands(s with { Reminder50Sent = true, Reminder75Sent = true }, s.ReplyDeadline.AddTicks(-1)));
        Assert.IsType<DeadlinePassed>(Assert.Single(EscrowMachine.DueCommands(s, s.ReplyDeadline)));
    }

    [Fact]
    public void Due_commands_return_nothing_for_states_without_timers()
    {
        var far = T0.AddYears(1);
        Assert.Empty(EscrowMachine.DueCommands(AnEscrow.Processing(), far));
        Assert.Empty(EscrowMachine.DueCommands(AnEscrow.RefundPending(), far));
        Assert.Empty(EscrowMachine.DueCommands(AnEscrow.Released(), far));
        Assert.Empty(EscrowMachine.DueCommands(AnEscrow.Refunded(), far));
        Assert.Empty(EscrowMachine.DueCommands(AnEscrow.Cancelled(), far));
        Assert.Empty(EscrowMachine.DueCommands(AnEscrow.PaymentFailed(), far));
        Assert.Empty(EscrowMachine.DueCommands(new EscrowState(), far));
    }

    [Fact]
    public void Next_due_at_is_the_earliest_timer_or_pending_effect()
    {
        var awaiting = AnEscrow.AwaitingPayment();
        // The CreatePaymentIntent effect is due at once.
        Assert.Equal(T0, EscrowMachine.NextDueAt(awaiting));
        Assert.Equal(awaiting.UnpaidExpiresAt, EscrowMachine.NextDueAt(awaiting with { Outbox = [] }));

        var held = AnEscrow.Held() with { Outbox = [] };
        Assert.Equal(held.Reminder50At, EscrowMachine.NextDueAt(held));
        Assert.Equal(held.Reminder75At, EscrowMachine.NextDueAt(held with { Reminder50Sent = true }));
        Assert.Equal(held.ReplyDeadline, EscrowMachine.NextDueAt(held with { Reminder50Sent = true, Reminder75Sent = true }));
        Assert.Null(EscrowMachine.NextDueAt(held with { DisputeOpen = true }));

        var failed = AnEscrow.TransferFailed();
        Assert.Equal(failed.NextTransferAttemptAt, EscrowMachine.NextDueAt(failed with { Outbox = [] }));

        var delayed = AnEscrow.Released() with { Outbox = [new PendingEffect(50, EffectKind.SendEmail, EmailKind.PayoutSent, NotBefore: T0.AddDays(2))] };
        Assert.Equal(T0.AddDays(2), EscrowMachine.NextDueAt(delayed));
        Assert.Null(EscrowMachine.NextDueAt(AnEscrow.Released() with { Outbox = [] }));
        Assert.Null(EscrowMachine.NextDueAt(new EscrowState()));
    }

    [Fact]
    public void Operator_refund_after_capture_refunds_the_payment_rather_than_cancelling_it()
    {
        var s = AnEscrow.PendingUserSetup();
        s = s.Then(new OperatorRefund("recipient never set up payouts"), s.StatusChangedAt.AddDays(1));
        Assert.Equal(EscrowStatus.RefundPending, s.Status);
        Assert.True(s.Has(EffectKind.RefundPayment));
        Assert.False(s.Has(EffectKind.CancelPaymentIntent));
        Assert.False(s.Has(EffectKind.AwaitPayoutSetup));
        s = s.Then(new PaymentRefunded(s.EffectId(EffectKind.RefundPayment), "re_1"), s.StatusChangedAt.AddMinutes(1));
        Assert.Equal(EscrowStatus.Refunded, s.Status);
        Assert.Equal("re_1", s.RefundId);
    }

    [Fact]
    public void Capture_rejected_needs_an_operator_who_can_cancel_the_authorisation()
    {
        var s = AnEscrow.Processing();
        s = s.Then(new CaptureRejected(s.EffectId(EffectKind.CapturePayment), "charge_expired_for_capture"), s.StatusChangedAt.AddSeconds(1));
        Assert.True(s.NeedsOperator);
        Assert.Contains(s.Outbox, e => e.Kind == EffectKind.RaiseAlert && e.Alert?.Name == "money_effect_rejected" && e.Detail!.Contains("capture", StringComparison.Ordinal));
        s = s.Then(new OperatorRefund("expired"), s.StatusChangedAt.AddHours(1));
        Assert.Equal(EscrowStatus.RefundPending, s.Status);
        Assert.True(s.Has(EffectKind.CancelPaymentIntent));
        Assert.False(s.NeedsOperator);
    }

    [Fact]
    public void Authorisation_voided_while_processing_before_capture_refunds_and_drops_the_capture()
    {
        var s = AnEscrow.Processing();
        var d = s.Decide(new AuthorisationVoided("expired"), s.StatusChangedAt.AddSeconds(1));
        RefundedWithBothToldOfTheVoid(d.State);
        Assert.False(d.State.Has(EffectKind.CapturePayment));
    }

    [Fact]
    public void Authorisation_voided_while_held_refunds_with_an_alert_and_tells_sender_and_recipient()
    {
        var s = AnEscrow.Held();
        var d = s.Decide(new AuthorisationVoided("automatic"), s.StatusChangedAt.AddHours(1));
        Assert.True(d.Accepted);
        RefundedWithBothToldOfTheVoid(d.State);
        Assert.Contains(d.State.Outbox, e => e.Kind == EffectKind.RaiseAlert && e.Alert?.Name == "authorisation_voided" && e.Detail == "automatic");
        // Not the deadline's e-mails: nobody missed a deadline.
        Assert.False(d.State.HasEmail(EmailKind.MissedOpportunity));
    }

    /// <summary>
    /// An authorisation voided before the capture: refunded with an alert; the sender is not charged and the recipient
    /// will not be paid, and both are told so (not with the refund e-mail).
    /// </summary>
    private static void RefundedWithBothToldOfTheVoid(EscrowState s)
    {
        Assert.Equal(EscrowStatus.Refunded, s.Status);
        Assert.True(s.Has(EffectKind.RaiseAlert));
        Assert.True(s.HasEmail(EmailKind.PaymentVoided));
        Assert.True(s.HasEmail(EmailKind.PaymentWithdrawn));
        Assert.False(s.HasEmail(EmailKind.RefundIssued));
        EscrowInvariants.Check(s);
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
    public void Effect_completed_removes_exactly_that_effect()
    {
        var s = AnEscrow.Held();
        var id = s.EmailEffectId(EmailKind.NewMessage);
        s = s.Then(new EffectCompleted(id), s.StatusChangedAt.AddSeconds(1));
        Assert.DoesNotContain(s.Outbox, e => e.Id == id);
        Assert.True(s.HasEmail(EmailKind.PaymentReceipt));
        Assert.Equal("unknown_effect", s.Decide(new EffectCompleted(id), s.StatusChangedAt.AddSeconds(2)).Rejection?.Code);
    }

    [Fact]
    public void Effect_ids_are_unique_and_increasing_across_a_whole_lifecycle()
    {
        var s = AnEscrow.Released();
        var ids = s.Outbox.Select(e => e.Id).ToArray();
        Assert.Equal(ids.Order(), ids);
        Assert.All(ids, id => Assert.True(id < s.NextEffectId));
    }

    [Fact]
    public void Invariants_detect_a_released_escrow_without_a_transfer()
    {
        var s = AnEscrow.Released() with { TransferId = null };
        var error = Assert.Throws<EscrowInvariantException>(() => EscrowInvariants.Check(s));
        Assert.Equal(s.Id, error.EscrowId);
        Assert.Contains("a released escrow has a transfer", error.Message, StringComparison.Ordinal);
    }

    public static TheoryData<string, string> BrokenStates() => new()
    {
        { "split_does_not_add_up", "share + fee == amount" },
        { "transfer_without_charge", "a transfer needs a captured charge" },
        { "pending_setup_uncaptured", "pending_user_setup and transfer_failed escrows are captured" },
        { "refunded_with_transfer", "a refunded escrow has no transfer" },
        { "duplicate_effect_ids", "effect ids are unique" },
        { "two_transfers_pending", "at most one transfer is pending" },
        { "terminal_with_capture", "a terminal escrow moves no more money" },
        { "captured_and_cancelled", "a captured payment is never cancelled" },
        { "reply_deadline_before_deadline", "the reply deadline is not before the deadline" },
    };

    [Theory]
    [MemberData(nameof(BrokenStates))]
    public void Invariants_detect_a_broken_state(string broken, string what)
    {
        var transfer = new PendingEffect(90, EffectKind.TransferShare);
        var s = broken switch
        {
            "split_does_not_add_up" => AnEscrow.Held() with { Split = new Split(Money.Eur(11_25), Money.Eur(3_74)) },
            "transfer_without_charge" => AnEscrow.Processing() with { TransferId = "tr_x" },
            "pending_setup_uncaptured" => AnEscrow.PendingUserSetup() with { ChargeId = null },
            "refunded_with_transfer" => AnEscrow.Refunded() with { TransferId = "tr_x", ChargeId = "ch_x" },
            "duplicate_effect_ids" => AnEscrow.Held() with { Outbox = [new PendingEffect(1, EffectKind.SendEmail), new PendingEffect(1, EffectKind.RaiseAlert)] },
            "two_transfers_pending" => AnEscrow.Captured() with { Outbox = [transfer, transfer with { Id = 91 }] },
            "terminal_with_capture" => AnEscrow.Refunded() with { Outbox = [new PendingEffect(90, EffectKind.CapturePayment)] },
            "captured_and_cancelled" => AnEscrow.Captured() with { Outbox = [new PendingEffect(90, EffectKind.CancelPaymentIntent)] },
            "reply_deadline_before_deadline" => AnEscrow.Held() with { ReplyDeadline = AnEscrow.Held().Deadline.AddTicks(-1) },
            _ => throw new ArgumentOutOfRangeException(nameof(broken), broken, null),
        };
        var error = Assert.Throws<EscrowInvariantException>(() => EscrowInvariants.Check(s));
        Assert.Contains(what, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Invariants_hold_for_every_built_state()
    {
        foreach (var status in Enum.GetValues<EscrowStatus>())
        {
            var error = Record.Exception(() => EscrowInvariants.Check(AnEscrow.In(status)));
            Assert.Null(error);
        }
    }

    /// <summary>
    /// Like every other effect result, a cancel result must name a pending cancel. Before the permit is granted
    /// there is no cancel in the outbox, so a PaymentIntentCancelled cannot complete one and must not refund.
    /// </summary>
    [Fact]
    public void Payment_intent_cancelled_before_any_cancel_was_requested_is_rejected_as_unknown_effect()
    {
        var s = AnEscrow.RefundPending();
        Assert.False(EscrowMachine.RefundStarted(s));
        var d = s.Decide(new PaymentIntentCancelled(404), s.ReplyDeadline.AddSeconds(1));
        Assert.Equal("unknown_effect", d.Rejection?.Code);
        Assert.Equal(EscrowStatus.RefundPending, d.State.Status);
        Assert.False(d.State.HasEmail(EmailKind.RefundIssued));
    }

    [Fact]
    public void Authorisation_voided_while_waiting_for_a_permit_refunds_with_an_alert_and_drops_the_permit_request()
    {
        var s = AnEscrow.RefundPending();
        var d = s.Decide(new AuthorisationVoided("expired"), s.ReplyDeadline.AddMinutes(1));
        Assert.True(d.Accepted);
        Assert.Equal(EscrowStatus.Refunded, d.State.Status);
        Assert.False(d.State.Has(EffectKind.RequestRefundPermit));
        Assert.Contains(d.State.Outbox, e => e.Kind == EffectKind.RaiseAlert && e.Alert?.Name == "authorisation_voided" && e.Detail == "expired");
        // The deadline passed without a reply: the refund's own e-mails say what happened.
        Assert.True(d.State.HasEmail(EmailKind.RefundIssued));
        Assert.True(d.State.HasEmail(EmailKind.MissedOpportunity));
        Assert.False(d.State.HasEmail(EmailKind.PaymentVoided));
        EscrowInvariants.Check(d.State);
    }

    [Fact]
    public void Authorisation_voided_after_our_own_cancel_started_completes_the_refund_with_emails()
    {
        var s = AnEscrow.RefundPending();
        s = s.Then(new RefundPermitAnswered(s.EffectId(EffectKind.RequestRefundPermit), RefundPermit.Granted), s.ReplyDeadline.AddSeconds(1));
        var d = s.Decide(new AuthorisationVoided("requested_by_customer"), s.ReplyDeadline.AddSeconds(2));
        Assert.Equal(EscrowStatus.Refunded, d.State.Status);
        Assert.False(d.State.Has(EffectKind.CancelPaymentIntent));
        Assert.True(d.State.HasEmail(EmailKind.RefundIssued));
        Assert.True(d.State.HasEmail(EmailKind.MissedOpportunity));
        Assert.DoesNotContain(d.State.Outbox, e => e.Kind == EffectKind.RaiseAlert);
    }

    [Fact]
    public void Reply_within_grace_while_the_refund_awaits_approval_releases_and_clears_the_approval()
    {
        var s = AnEscrow.RefundPending();
        s = s.Then(new RefundPermitAnswered(s.EffectId(EffectKind.RequestRefundPermit), RefundPermit.NeedsApproval), s.ReplyDeadline.AddSeconds(1));
        s = s.Then(new AcceptReply(s.ReplyDeadline.AddTicks(-1), "email", "Late but in grace"), s.ReplyDeadline.AddMinutes(2));
        Assert.Equal(EscrowStatus.Processing, s.Status);
        Assert.False(s.RefundAwaitingApproval);
        Assert.True(s.Has(EffectKind.CapturePayment));
        Assert.Equal("not_allowed_in_status", s.Decide(new OperatorApproveRefund(), s.ReplyDeadline.AddMinutes(3)).Rejection?.Code);
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

    [Fact]
    public void History_records_the_status_after_each_transition_with_consecutive_sequence_numbers()
    {
        var s = AnEscrow.Refunded();
        Assert.Equal(Enumerable.Range(1, s.History.Length), s.History.Select(h => h.Seq));
        Assert.Equal(EscrowStatus.AwaitingPayment, s.History[0].Status);
        Assert.Equal(EscrowStatus.Held, s.History.Single(h => h.Event == "authorised").Status);
        Assert.Equal(EscrowStatus.RefundPending, s.History.Single(h => h.Event == "deadline_passed").Status);
        var last = s.History[^1];
        Assert.Equal(EscrowStatus.Refunded, last.Status);
        Assert.Equal(s.Amount.Minor, last.AmountMinor);
    }

    [Fact]
    public void An_escrow_with_no_revenue_share_keeps_it_all_as_the_fee_and_stays_valid()
    {
        var s = EscrowMachine.Create(AnEscrow.New(bps: 0), T0);
        Assert.Equal(Money.Eur(0), s.Split.RecipientShare);
        Assert.Equal(s.Amount, s.Split.PlatformFee);
        EscrowInvariants.Check(s);
    }

    [Fact]
    public void A_yen_escrow_keeps_its_currency_in_the_split_and_checks_it_on_authorisation()
    {
        var yen = new Money(1_500, Currency.Parse("JPY"));
        var s = AnEscrow.AwaitingPayment(yen);
        Assert.Equal(Currency.Parse("JPY"), s.Split.RecipientShare.Currency);
        Assert.Equal("amount_mismatch", s.Decide(new PaymentAuthorised("pi_1", 1_500, "EUR"), T0.AddMinutes(1)).Rejection?.Code);
        Assert.Equal(EscrowStatus.Held, s.Then(new PaymentAuthorised("pi_1", 1_500, "jpy"), T0.AddMinutes(1)).Status);
    }

    private static EffectKind[] PendingEffectKinds(params EffectKind[] kinds) => kinds;
}

public sealed class PersonalDataErasureTests
{
    private static readonly DateTimeOffset Later = AnEscrow.T0.AddDays(3);

    /// <summary>The escrow once its e-mails are sent (the outbox emptied of them).</summary>
    private static EscrowState Mailed(EscrowState s) =>
        s.Outbox.Where(e => e.Kind == EffectKind.SendEmail).Select(e => e.Id).ToList().Aggregate(s, (x, id) => x.Then(new EffectCompleted(id), Later));

    [Fact]
    public void Erasing_a_finished_escrow_replaces_the_texts_and_the_sender_keeping_ids_and_amounts()
    {
        var s = Mailed(AnEscrow.Released());

        var erased = s.Then(new ErasePersonalData(BodiesOnly: false), Later);

        Assert.Equal(("erased", "erased", "erased"), (erased.SenderEmail, erased.Subject, erased.Message));
        Assert.Equal((s.Id, s.Amount, s.Split, s.TransferId, s.Status), (erased.Id, erased.Amount, erased.Split, erased.TransferId, erased.Status));
        Assert.Equal("personal_data_erased", erased.History[^1].Event);
        Assert.Equal("already_done", erased.Decide(new ErasePersonalData(BodiesOnly: false), Later).Rejection?.Code);
    }

    [Fact]
    public void Retention_erases_the_bodies_and_keeps_the_senders_address()
    {
        var s = Mailed(AnEscrow.Refunded());

        var retired = s.Then(new ErasePersonalData(BodiesOnly: true), Later);

        Assert.Equal((s.SenderEmail, "erased", "erased"), (retired.SenderEmail, retired.Subject, retired.Message));
        Assert.Equal("already_done", retired.Decide(new ErasePersonalData(BodiesOnly: true), Later).Rejection?.Code);
        Assert.Equal("erased", retired.Then(new ErasePersonalData(BodiesOnly: false), Later).SenderEmail);
    }

    [Fact]
    public void An_open_escrow_or_a_finished_one_with_e_mails_to_send_keeps_its_personal_data()
    {
        Assert.Equal("escrow_open", AnEscrow.Held().Decide(new ErasePersonalData(BodiesOnly: false), Later).Rejection?.Code);
        var refunded = AnEscrow.Refunded();
        Assert.True(refunded.HasEmail(EmailKind.RefundIssued));
        Assert.Equal("escrow_open", refunded.Decide(new ErasePersonalData(BodiesOnly: false), Later).Rejection?.Code);
    }
}
