namespace Escrow.Tests.Domain;

/// <summary>A money movement Stripe refuses for good ends, is recorded and alerted, and waits for an operator.</summary>
public sealed class PermanentRefusalTests
{
    [Theory]
    [InlineData(400, "invalid_request_error", "resource_missing", true)]
    [InlineData(400, "invalid_request_error", "charge_already_refunded", true)]
    [InlineData(400, "invalid_request_error", "amount_too_large", true)]
    [InlineData(400, "invalid_request_error", "payment_intent_unexpected_state", true)]
    [InlineData(400, "invalid_request_error", "charge_disputed", true)]
    [InlineData(404, "invalid_request_error", "resource_missing", true)]
    [InlineData(402, "card_error", "card_declined", true)]
    [InlineData(400, "idempotency_error", null, false)]
    [InlineData(400, "invalid_request_error", "lock_timeout", false)]
    [InlineData(401, "invalid_request_error", null, false)]
    [InlineData(403, "invalid_request_error", null, false)]
    [InlineData(409, "invalid_request_error", null, false)]
    [InlineData(424, "invalid_request_error", null, false)]
    [InlineData(429, "rate_limit_error", "rate_limit", false)]
    [InlineData(500, "api_error", null, false)]
    [InlineData(503, null, null, false)]
    [InlineData(0, null, null, false)]
    public void Stripe_answers_are_refusals_for_good_only_when_asking_again_cannot_help(int status, string? type, string? code, bool permanent) =>
        Assert.Equal(permanent, StripeRefusals.IsPermanent(status, type, code));

    /// <summary>Held past the deadline with the permit granted: the cancel is the pending money movement.</summary>
    private static EscrowState Cancelling()
    {
        var s = AnEscrow.RefundPending();
        return s.Then(new RefundPermitAnswered(s.EffectId(EffectKind.RequestRefundPermit), RefundPermit.Granted), s.ReplyDeadline.AddSeconds(1));
    }

    private static PendingEffect Alert(EscrowState s) =>
        Assert.Single(s.Outbox, e => e.Kind == EffectKind.RaiseAlert && e.Alert?.Name == "money_effect_rejected");

    [Fact]
    public void A_cancel_refused_for_good_ends_with_the_code_in_history_a_critical_alert_and_an_operator_needed()
    {
        var s = Cancelling();
        var cancel = s.EffectId(EffectKind.CancelPaymentIntent);

        s = s.Then(new EffectFailed(cancel, "payment_intent_unexpected_state", Permanent: true), s.StatusChangedAt.AddMinutes(1));

        Assert.Equal(EscrowStatus.RefundPending, s.Status);
        Assert.False(s.Has(EffectKind.CancelPaymentIntent));
        Assert.True(s.NeedsOperator);
        Assert.Equal("payment_intent_unexpected_state", s.LastError);
        var entry = s.History[^1];
        Assert.Equal("cancel_rejected", entry.Event);
        Assert.Equal("payment_intent_unexpected_state", entry.Detail);
        var alert = Alert(s).Detail!;
        Assert.Contains(s.Id.ToString(), alert, StringComparison.Ordinal);
        Assert.Contains("cancel", alert, StringComparison.Ordinal);
        // Nothing is due: no reminder brings the cancel back.
        Assert.Empty(EscrowMachine.DueCommands(s, s.StatusChangedAt.AddDays(30)));
        Assert.False(s.Has(EffectKind.RequestRefundPermit));
    }

    [Fact]
    public void An_operator_refund_after_a_refused_cancel_tries_again_under_a_key_Stripe_has_not_answered()
    {
        var s = Cancelling();
        var cancel = s.Outbox.Single(e => e.Kind == EffectKind.CancelPaymentIntent);
        // One transient failure first: the refused answer came under the effect's second key.
        s = s with { Outbox = s.Outbox.Replace(cancel, cancel with { KeyAttempt = 1, Attempts = 1 }) };
        s = s.Then(new EffectFailed(cancel.Id, "payment_intent_unexpected_state", Permanent: true), s.StatusChangedAt.AddMinutes(1));

        s = s.Then(new OperatorRefund("checked in Stripe"), s.StatusChangedAt.AddHours(1));

        var retry = s.Outbox.Single(e => e.Kind == EffectKind.CancelPaymentIntent);
        Assert.Equal(2, retry.KeyAttempt);
        Assert.False(s.NeedsOperator);
        Assert.Equal("operator_refund", s.History[^1].Event);
    }

    [Fact]
    public void A_refund_of_a_captured_payment_refused_for_good_can_be_retried_as_a_refund_or_released_by_an_operator()
    {
        var s = AnEscrow.PendingUserSetup();
        s = s.Then(new OperatorRefund("never set up payouts"), s.StatusChangedAt.AddDays(1));
        s = s.Then(new EffectFailed(s.EffectId(EffectKind.RefundPayment), "charge_disputed", Permanent: true), s.StatusChangedAt.AddMinutes(1));
        Assert.True(s.NeedsOperator);
        Assert.Equal("refund_rejected", s.History[^1].Event);
        Assert.Contains("refund", Alert(s).Detail!, StringComparison.Ordinal);

        var refund = s.Then(new OperatorRefund("dispute closed"), s.StatusChangedAt.AddHours(1));
        Assert.True(refund.Has(EffectKind.RefundPayment));
        Assert.False(refund.Has(EffectKind.CancelPaymentIntent));
        Assert.Equal(1, refund.Outbox.Single(e => e.Kind == EffectKind.RefundPayment).KeyAttempt);

        var release = s.Then(new OperatorRelease("pay the recipient after all"), s.StatusChangedAt.AddHours(1));
        Assert.Equal(EscrowStatus.Processing, release.Status);
        Assert.True(release.Has(EffectKind.TransferShare));
        Assert.False(release.Has(EffectKind.CapturePayment));
    }

    [Fact]
    public void A_failure_for_good_ends_only_a_money_movement_back_to_the_sender_and_any_other_effect_is_tried_again()
    {
        var s = AnEscrow.Processing();
        var capture = s.EffectId(EffectKind.CapturePayment);

        s = s.Then(new EffectFailed(capture, "resource_missing", Permanent: true), s.StatusChangedAt.AddMinutes(1));

        var retried = s.Outbox.Single(e => e.Id == capture);
        Assert.Equal(1, retried.Attempts);
        Assert.NotNull(retried.NotBefore);
        Assert.False(s.NeedsOperator);
        Assert.Equal(EscrowStatus.Processing, s.Status);
        Assert.Equal("unknown_effect", s.Decide(new EffectFailed(9_999, "resource_missing", Permanent: true), s.StatusChangedAt.AddMinutes(1)).Rejection?.Code);
    }
}
