namespace Escrow.Tests.Domain;

/// <summary>What an operator's resolution leaves behind: a dispute closed for good, and no flag nothing can clear.</summary>
public sealed class OperatorResolutionTests
{
    /// <summary>Finished, then Stripe reported an authorisation the escrow never recorded: its cancel is pending.</summary>
    internal static EscrowState FinishedWithStrayCancel(EscrowStatus finished)
    {
        var s = AnEscrow.In(finished) with { PaymentIntentId = null };
        s = s.Then(new PaymentAuthorised("pi_stray", s.Amount.Minor, s.Amount.Currency.Code), s.StatusChangedAt.AddMinutes(5));
        Assert.True(s.Has(EffectKind.CancelPaymentIntent));
        return s;
    }

    [Fact]
    public void Resolving_a_dispute_whose_share_was_taken_back_closes_it_and_transfers_the_share_again()
    {
        var s = AnEscrow.DisputedAndReversed();
        var keyBefore = s.TransferKeyAttempt;
        var payoutEmails = s.Outbox.Count(e => e.Email == EmailKind.PayoutSent);

        s = s.Then(new OperatorResolveDispute("the sender withdrew the chargeback"), s.StatusChangedAt.AddDays(3));

        Assert.False(s.DisputeOpen);
        Assert.Equal(DisputeStatus.Resolved, s.DisputeStatus);
        Assert.Equal(EscrowStatus.Processing, s.Status);
        Assert.True(s.Has(EffectKind.TransferShare));
        Assert.Equal(keyBefore + 1, s.TransferKeyAttempt);
        s = s.Then(new Transferred(s.EffectId(EffectKind.TransferShare), "tr_2", AnEscrow.AccountId, Adopted: false), s.StatusChangedAt.AddMinutes(1));
        Assert.Equal(EscrowStatus.Released, s.Status);
        Assert.Equal("tr_2", s.TransferId);
        Assert.False(s.ShareReversed);
        Assert.Equal(payoutEmails, s.Outbox.Count(e => e.Email == EmailKind.PayoutSent));
        Assert.Equal(["dispute_opened", "share_reversed", "dispute_resolved", "transferred"], s.History[^4..].Select(h => h.Event));
        Assert.Equal("no_dispute", s.Decide(new OperatorResolveDispute("again"), s.StatusChangedAt.AddDays(1)).Rejection?.Code);
        Assert.Equal("already_done", s.Decide(new DisputeClosed("dp_1", Won: false), s.StatusChangedAt.AddDays(1)).Rejection?.Code);
    }

    [Fact]
    public void Resolving_a_dispute_during_a_refund_after_release_lets_the_refund_go_on()
    {
        var s = AnEscrow.DisputedAndReversed();
        s = s.Then(new OperatorRefund("the sender asked"), s.StatusChangedAt.AddDays(1));
        Assert.True(s.Has(EffectKind.RefundPayment));

        s = s.Then(new OperatorResolveDispute("the refund settles it"), s.StatusChangedAt.AddDays(1));

        Assert.Equal(EscrowStatus.RefundPending, s.Status);
        Assert.Equal(DisputeStatus.Resolved, s.DisputeStatus);
        Assert.True(s.Has(EffectKind.RefundPayment));
        Assert.False(s.Has(EffectKind.TransferShare));
    }

    [Theory]
    [InlineData(EscrowStatus.Cancelled)]
    [InlineData(EscrowStatus.PaymentFailed)]
    public void A_cancel_refused_for_good_on_a_finished_escrow_is_alerted_without_a_needs_operator_flag_nothing_could_clear(EscrowStatus finished)
    {
        var s = FinishedWithStrayCancel(finished);

        var stray = s.Outbox.Last(e => e.Kind == EffectKind.CancelPaymentIntent).Id;

        s = s.Then(new EffectFailed(stray, "resource_missing", Permanent: true), s.StatusChangedAt.AddMinutes(6));

        Assert.Equal(finished, s.Status);
        Assert.False(s.NeedsOperator);
        Assert.DoesNotContain(s.Outbox, e => e.Id == stray);
        Assert.Equal(("cancel_rejected", "resource_missing"), (s.History[^1].Event, s.History[^1].Detail));
        var alert = Assert.Single(s.Outbox, e => e.Kind == EffectKind.RaiseAlert && e.Alert == AlertKind.MoneyEffectRejected);
        Assert.Contains("settle the payment pi_stray", alert.Detail, StringComparison.Ordinal);
        // No operator action applies to a finished escrow: had the flag been set, nothing would ever clear it.
        foreach (EscrowCommand action in new EscrowCommand[] { new OperatorRefund("x"), new OperatorRelease("x"), new OperatorRetryTransfer(), new OperatorApproveRefund(), new OperatorResolveDispute("x") })
        {
            Assert.False(s.Decide(action, s.StatusChangedAt.AddMinutes(7)).Accepted);
        }
    }

    [Fact]
    public void A_cancel_refused_for_good_on_an_open_refund_still_waits_for_an_operator()
    {
        var s = AnEscrow.RefundPending();
        s = s.Then(new RefundPermitAnswered(s.EffectId(EffectKind.RequestRefundPermit), RefundPermit.Granted), s.ReplyDeadline.AddSeconds(1));

        s = s.Then(new EffectFailed(s.EffectId(EffectKind.CancelPaymentIntent), "payment_intent_unexpected_state", Permanent: true), s.ReplyDeadline.AddSeconds(2));

        Assert.True(s.NeedsOperator);
        Assert.True(s.Decide(new OperatorRefund("checked in Stripe"), s.ReplyDeadline.AddMinutes(1)).Accepted);
    }
}
