namespace Escrow.Tests.Domain;

/// <summary>An operator's refund of a paid-out escrow: the share is taken back first, then the charge refunded.</summary>
public sealed class RefundAfterReleaseTests
{
    private static EscrowState Refunding()
    {
        var s = AnEscrow.Released();
        return s.Then(new OperatorRefund("the sender complained"), s.StatusChangedAt.AddDays(1));
    }

    [Fact]
    public void The_refund_of_a_released_escrow_reverses_the_transfer_first_and_refunds_only_once_that_is_recorded()
    {
        var s = Refunding();
        Assert.Equal(EscrowStatus.RefundPending, s.Status);
        Assert.True(s.Has(EffectKind.ReverseTransfer));
        Assert.False(s.Has(EffectKind.RefundPayment));

        s = s.Then(new TransferReversalMade(s.EffectId(EffectKind.ReverseTransfer), "trr_1"), s.StatusChangedAt.AddMinutes(1));
        Assert.Equal(EscrowStatus.RefundPending, s.Status);
        Assert.True(s.ShareReversed);
        Assert.True(s.Has(EffectKind.RefundPayment));
        Assert.Equal("trr_1 of " + AnEscrow.TransferId, s.History[^1].Detail);

        s = s.Then(new PaymentRefunded(s.EffectId(EffectKind.RefundPayment), "re_1"), s.StatusChangedAt.AddMinutes(2));
        Assert.Equal(EscrowStatus.Refunded, s.Status);
        Assert.Contains(s.History, h => h.Event == "share_reversed" && h.Detail!.Contains("trr_1", StringComparison.Ordinal));
        Assert.Contains(s.History, h => h.Event == "payment_refunded" && h.Detail == "re_1");
        Assert.All(s.Outbox.Where(e => e.Email is EmailKind.RefundIssued or EmailKind.MissedOpportunity),
            e => Assert.Equal(nameof(RefundCause.PlatformAfterRelease), e.Detail));
        Assert.True(s.HasEmail(EmailKind.RefundIssued));
        Assert.True(s.HasEmail(EmailKind.MissedOpportunity));
        EscrowInvariants.Check(s);
    }

    /// <summary>Simulation seed 37: a repeated transfer.created of the reversed share adopted it and dropped the refund.</summary>
    [Fact]
    public void A_late_report_of_the_reversed_transfer_leaves_the_refund_under_way()
    {
        var s = Refunding();
        s = s.Then(new TransferReversalMade(s.EffectId(EffectKind.ReverseTransfer), "trr_1"), s.StatusChangedAt.AddMinutes(1));
        var late = new TransferReported(AnEscrow.TransferId, s.Split.RecipientShare.Minor, "eur", AnEscrow.AccountId, AnEscrow.AccountId);

        Assert.Equal("already_done", s.Decide(late, s.StatusChangedAt.AddHours(2)).Rejection?.Code);

        s = s.Then(new PaymentRefunded(s.EffectId(EffectKind.RefundPayment), "re_1"), s.StatusChangedAt.AddHours(3));
        Assert.Equal(EscrowStatus.Refunded, s.Status);
        Assert.Equal("already_done", s.Decide(late, s.StatusChangedAt.AddHours(4)).Rejection?.Code);
    }

    /// <summary>Simulation seed 8355: the reply, delivered again, released a second time under the reversed transfer's key.</summary>
    [Fact]
    public void A_reply_delivered_again_after_the_share_was_reversed_and_the_refund_refused_releases_nothing()
    {
        var s = Refunding();
        s = s.Then(new TransferReversalMade(s.EffectId(EffectKind.ReverseTransfer), "trr_1"), s.StatusChangedAt.AddMinutes(1));
        s = s.Then(new EffectFailed(s.EffectId(EffectKind.RefundPayment), "charge_already_refunded", Permanent: true),
            s.StatusChangedAt.AddMinutes(2));
        Assert.Equal(EscrowStatus.RefundPending, s.Status);
        Assert.True(s.ShareReversed);

        var again = new AcceptReply(AnEscrow.T0.AddHours(2), "email", "Here are the slides.");
        Assert.Equal("already_replied", s.Decide(again, s.StatusChangedAt.AddDays(1)).Rejection?.Code);
    }

    [Fact]
    public void A_reversal_refused_for_lack_of_balance_makes_no_refund_and_the_alert_says_why()
    {
        var s = Refunding();
        s = s.Then(new EffectFailed(s.EffectId(EffectKind.ReverseTransfer), "balance_insufficient", Permanent: true), s.StatusChangedAt.AddMinutes(1));

        Assert.Equal(EscrowStatus.Released, s.Status);
        Assert.False(s.Has(EffectKind.RefundPayment));
        Assert.False(s.Has(EffectKind.ReverseTransfer));
        Assert.True(s.NeedsOperator);
        Assert.Equal("reversal_rejected", s.History[^1].Event);
        var raised = Assert.Single(s.Outbox, e => e.Kind == EffectKind.RaiseAlert);
        Assert.Equal("money_effect_rejected", raised.Alert?.Name);
        var alert = raised.Detail!;
        Assert.Contains("balance", alert, StringComparison.Ordinal);
        Assert.Contains("not refunded", alert, StringComparison.Ordinal);

        // Later, with the balance back, the operator tries again under a key Stripe has not answered.
        var again = s.Then(new OperatorRefund("balance is back"), s.StatusChangedAt.AddDays(1));
        Assert.Equal(1, again.Outbox.Single(e => e.Kind == EffectKind.ReverseTransfer).KeyAttempt);
    }

    [Fact]
    public void While_the_reversal_is_under_way_a_second_refund_or_a_release_is_refused_and_its_own_event_changes_nothing()
    {
        var s = Refunding();
        var now = s.StatusChangedAt.AddSeconds(1);
        Assert.Equal("refund_underway", s.Decide(new OperatorRefund("again"), now).Rejection?.Code);
        Assert.Equal("refund_underway", s.Decide(new OperatorRelease("pay after all"), now).Rejection?.Code);
        Assert.Equal("already_done", s.Decide(new TransferReversed(AnEscrow.TransferId, s.Split.RecipientShare.Minor), now).Rejection?.Code);

        s = s.Then(new TransferReversalMade(s.EffectId(EffectKind.ReverseTransfer), "trr_1"), now);
        Assert.Equal("already_done", s.Decide(new TransferReversed(AnEscrow.TransferId, s.Split.RecipientShare.Minor), now).Rejection?.Code);
    }

    [Fact]
    public void A_reversal_made_outside_this_service_is_alerted_on_once_by_the_escrow()
    {
        var s = AnEscrow.Released();
        s = s.Then(new TransferReversed(AnEscrow.TransferId, s.Split.RecipientShare.Minor), s.StatusChangedAt.AddDays(1));
        Assert.Equal(EscrowStatus.Released, s.Status);
        Assert.Single(s.Outbox, e => e.Kind == EffectKind.RaiseAlert && e.Alert?.Name == "transfer_reversed");
    }
}
