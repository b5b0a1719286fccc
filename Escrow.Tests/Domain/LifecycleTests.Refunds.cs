namespace Escrow.Tests.Domain;

// Giving the money back: the deadline, the breaker's permit, operator refunds, refused captures and voided authorisations.
public sealed partial class LifecycleTests
{
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
}
