namespace Escrow.Tests.Domain;

/// <summary>
/// A transfer reversal under way may have been made with its answer lost: it is never dropped.
/// </summary>
public sealed class ReversalUnderWayTests
{
    private static EscrowState Disputed()
    {
        var s = AnEscrow.Disputed();
        Assert.True(s.Has(EffectKind.ReverseTransfer));
        return s;
    }

    [Fact]
    public void A_dispute_resolved_while_its_reversal_timed_out_finishes_the_reversal_then_transfers_the_share_again()
    {
        // Simulation seed 1792: the reversal's answer was lost (Stripe made it), the operator resolved the dispute, and
        // the reversal was dropped: the escrow stayed released though the recipient no longer had the share.
        var s = Disputed();
        s = s.Then(new EffectFailed(s.EffectId(EffectKind.ReverseTransfer), "timeout", Permanent: false), s.StatusChangedAt.AddMinutes(1));
        var keyBefore = s.TransferKeyAttempt;

        s = s.Then(new OperatorResolveDispute("settled with the sender"), s.StatusChangedAt.AddHours(8));
        Assert.Equal(DisputeStatus.Resolved, s.DisputeStatus);
        Assert.Equal(EscrowStatus.Released, s.Status);
        Assert.True(s.Has(EffectKind.ReverseTransfer));

        s = s.Then(new TransferReversalMade(s.EffectId(EffectKind.ReverseTransfer), "trr_1"), s.StatusChangedAt.AddHours(9));
        Assert.Equal(EscrowStatus.Processing, s.Status);
        Assert.True(s.ShareReversed);
        Assert.True(s.Has(EffectKind.TransferShare));
        Assert.Equal(keyBefore + 1, s.TransferKeyAttempt);

        s = s.Then(new Transferred(s.EffectId(EffectKind.TransferShare), "tr_2", AnEscrow.AccountId, Adopted: false), s.StatusChangedAt.AddMinutes(1));
        Assert.Equal(EscrowStatus.Released, s.Status);
        Assert.Equal("tr_2", s.TransferId);
        Assert.Equal(["dispute_opened", "dispute_resolved", "share_reversed", "transferred"], s.Events()[^4..]);
        EscrowInvariants.Check(s);
    }

    [Fact]
    public void A_dispute_won_while_its_reversal_is_under_way_finishes_the_reversal_then_transfers_the_share_again()
    {
        var s = Disputed();
        s = s.Then(new DisputeClosed("dp_1", Won: true), s.StatusChangedAt.AddDays(10));
        Assert.Equal(EscrowStatus.Released, s.Status);
        Assert.True(s.Has(EffectKind.ReverseTransfer));
        Assert.Contains("transferred again", s.Outbox.Single(e => e.Alert?.Name == "dispute_won").Detail, StringComparison.Ordinal);

        s = s.Then(new TransferReversalMade(s.EffectId(EffectKind.ReverseTransfer), "trr_1"), s.StatusChangedAt.AddMinutes(1));
        Assert.Equal(EscrowStatus.Processing, s.Status);
        Assert.True(s.Has(EffectKind.TransferShare));
    }

    [Fact]
    public void A_reversal_refused_after_its_dispute_was_resolved_leaves_the_share_with_the_recipient_without_an_operator()
    {
        var s = Disputed();
        s = s.Then(new OperatorResolveDispute("withdrawn"), s.StatusChangedAt.AddHours(1));
        s = s.Then(new EffectFailed(s.EffectId(EffectKind.ReverseTransfer), "balance_insufficient", Permanent: true), s.StatusChangedAt.AddMinutes(1));

        Assert.Equal(EscrowStatus.Released, s.Status);
        Assert.False(s.ShareReversed);
        Assert.False(s.NeedsOperator);
        Assert.False(s.Has(EffectKind.ReverseTransfer));
        Assert.Equal("share_kept", s.History[^1].Event);
        Assert.DoesNotContain(s.Outbox, e => e.Kind == EffectKind.RaiseAlert && e.Alert?.Name == "money_effect_rejected");
    }

    [Fact]
    public void A_dispute_lost_while_its_reversal_is_under_way_takes_the_share_back_and_transfers_nothing()
    {
        var s = Disputed();
        s = s.Then(new DisputeClosed("dp_1", Won: false), s.StatusChangedAt.AddDays(10));
        s = s.Then(new TransferReversalMade(s.EffectId(EffectKind.ReverseTransfer), "trr_1"), s.StatusChangedAt.AddMinutes(1));

        Assert.Equal(EscrowStatus.Released, s.Status);
        Assert.True(s.ShareReversed);
        Assert.False(s.Has(EffectKind.TransferShare));
    }

    [Fact]
    public void An_operator_refund_while_a_disputes_reversal_is_under_way_starts_no_second_reversal_and_refunds_after_it()
    {
        var s = Disputed();
        s = s.Then(new OperatorRefund("the sender asked"), s.StatusChangedAt.AddHours(1));
        Assert.Equal(EscrowStatus.RefundPending, s.Status);
        Assert.Single(s.Outbox, e => e.Kind == EffectKind.ReverseTransfer);
        Assert.False(s.Has(EffectKind.RefundPayment));

        s = s.Then(new TransferReversalMade(s.EffectId(EffectKind.ReverseTransfer), "trr_1"), s.StatusChangedAt.AddMinutes(1));
        Assert.True(s.Has(EffectKind.RefundPayment));
    }

    [Fact]
    public void An_operator_release_after_a_reversed_share_and_a_refused_refund_pays_under_the_next_transfer_key()
    {
        // Simulation seed 1784: the release paid under the first transfer's key, Stripe replayed that (reversed) transfer,
        // and the escrow was released while the recipient had nothing.
        var s = AnEscrow.Released();
        var keyBefore = s.TransferKeyAttempt;
        s = s.Then(new OperatorRefund("the sender complained"), s.StatusChangedAt.AddDays(1));
        s = s.Then(new TransferReversalMade(s.EffectId(EffectKind.ReverseTransfer), "trr_1"), s.StatusChangedAt.AddMinutes(1));
        s = s.Then(new EffectFailed(s.EffectId(EffectKind.RefundPayment), "charge_already_refunded", Permanent: true), s.StatusChangedAt.AddMinutes(1));
        Assert.True(s.NeedsOperator);

        s = s.Then(new OperatorRelease("pay the recipient after all"), s.StatusChangedAt.AddDays(1));

        Assert.Equal(EscrowStatus.Processing, s.Status);
        Assert.True(s.Has(EffectKind.TransferShare));
        Assert.Equal(keyBefore + 1, s.TransferKeyAttempt);
    }
}
