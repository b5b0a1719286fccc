namespace Escrow.Tests.Domain;

/// <summary>Disputes (chargebacks): a paid-out share is taken back while one is open, and transferred again if it is won.</summary>
public sealed class DisputeTests
{
    private static readonly EscrowMachine NoReversal = new(EscrowPolicy.Default with { ReverseTransferOnDispute = false });

    [Fact]
    public void A_dispute_after_release_takes_the_share_back_stops_automatic_actions_and_alerts()
    {
        var s = AnEscrow.Disputed();
        Assert.Equal(EscrowStatus.Released, s.Status);
        Assert.True(s.DisputeOpen);
        Assert.Equal("dp_1", s.DisputeId);
        Assert.Equal(DisputeStatus.Open, s.DisputeStatus);
        Assert.True(s.Has(EffectKind.ReverseTransfer));
        Assert.Single(s.Outbox, e => e.Kind == EffectKind.RaiseAlert && e.Alert?.Name == "dispute_opened");

        s = s.Then(new TransferReversalMade(s.EffectId(EffectKind.ReverseTransfer), "trr_1"), s.StatusChangedAt.AddMinutes(1));
        Assert.True(s.ShareReversed);
        Assert.Equal(EscrowStatus.Released, s.Status);
        Assert.False(s.Has(EffectKind.RefundPayment));
        Assert.Equal("already_done", s.Decide(new DisputeOpened("dp_1"), s.StatusChangedAt.AddMinutes(2)).Rejection?.Code);
    }

    // Simulation seed 3671: a dispute reported for a declined escrow, then an operator cancel; the cancel waited for a
    // dispute that never closed, and the authorisation stayed on the card of an escrow that had ended.
    [Fact]
    public void An_operator_cancel_during_a_dispute_still_lets_go_of_the_uncaptured_hold()
    {
        var s = AnEscrow.Declined();
        s = s.Then(new DisputeOpened("dp_1"), s.StatusChangedAt.AddMinutes(20));
        s = s.Then(new OperatorRefund("the sender asked"), s.StatusChangedAt.AddHours(1));

        Assert.Equal(EscrowStatus.Cancelled, s.Status);
        Assert.True(s.DisputeOpen);
        var cancel = s.Outbox.Single(e => e.Kind == EffectKind.CancelPaymentIntent);
        Assert.True(Disputes.MayRun(s, cancel));
        Assert.False(EffectAge.HeldByDispute(s, cancel));
        Assert.NotNull(EscrowMachine.NextDueAt(s));
    }

    [Fact]
    public void Without_Disputes_ReverseTransfer_the_share_stays_with_the_recipient()
    {
        var s = AnEscrow.Released();
        var opened = NoReversal.Decide(s, new DisputeOpened("dp_1"), s.StatusChangedAt.AddDays(1));
        Assert.True(opened.Accepted);
        Assert.True(opened.State.DisputeOpen);
        Assert.DoesNotContain(opened.State.Outbox, e => e.Kind == EffectKind.ReverseTransfer);
    }

    [Fact]
    public void A_won_dispute_transfers_the_share_again_under_the_next_transfer_key()
    {
        var s = AnEscrow.DisputedAndReversed();
        var keyBefore = s.TransferKeyAttempt;

        s = s.Then(new DisputeClosed("dp_1", Won: true), s.StatusChangedAt.AddDays(10));

        Assert.False(s.DisputeOpen);
        Assert.Equal(DisputeStatus.Won, s.DisputeStatus);
        Assert.Equal(EscrowStatus.Processing, s.Status);
        Assert.True(s.Has(EffectKind.TransferShare));
        Assert.Equal(keyBefore + 1, s.TransferKeyAttempt);
        Assert.Single(s.Outbox, e => e.Kind == EffectKind.RaiseAlert && e.Alert?.Name == "dispute_won");

        s = s.Then(new Transferred(s.EffectId(EffectKind.TransferShare), "tr_2", AnEscrow.AccountId, Adopted: false), s.StatusChangedAt.AddMinutes(1));
        Assert.Equal(EscrowStatus.Released, s.Status);
        Assert.Equal("tr_2", s.TransferId);
        Assert.False(s.ShareReversed);
        Assert.Equal(["dispute_opened", "share_reversed", "dispute_won", "transferred"], s.Events()[^4..]);
    }

    [Fact]
    public void A_late_report_of_the_reversed_transfer_is_not_adopted_while_the_share_is_transferred_again()
    {
        var s = AnEscrow.DisputedAndReversed();
        s = s.Then(new DisputeClosed("dp_1", Won: true), s.StatusChangedAt.AddDays(10));
        Assert.Equal(EscrowStatus.Processing, s.Status);
        var late = new TransferReported(AnEscrow.TransferId, s.Split.RecipientShare.Minor, "eur", AnEscrow.AccountId, AnEscrow.AccountId);

        Assert.Equal("already_done", s.Decide(late, s.StatusChangedAt.AddMinutes(1)).Rejection?.Code);

        // The new transfer's own report, its answer lost, is still adopted.
        var adopted = s.Then(new TransferReported("tr_2", s.Split.RecipientShare.Minor, "eur", AnEscrow.AccountId, AnEscrow.AccountId),
            s.StatusChangedAt.AddMinutes(2));
        Assert.Equal(EscrowStatus.Released, adopted.Status);
        Assert.Equal("tr_2", adopted.TransferId);
        Assert.False(adopted.ShareReversed);
    }

    [Fact]
    public void A_won_dispute_after_an_operator_refund_transfers_nothing()
    {
        var s = AnEscrow.DisputedAndReversed();
        s = s.Then(new OperatorRefund("sender asked"), s.StatusChangedAt.AddDays(1));
        Assert.Equal(EscrowStatus.RefundPending, s.Status);
        Assert.True(s.Has(EffectKind.RefundPayment));
        Assert.False(s.Has(EffectKind.ReverseTransfer));

        s = s.Then(new DisputeClosed("dp_1", Won: true), s.StatusChangedAt.AddDays(10));
        Assert.Equal(EscrowStatus.RefundPending, s.Status);
        Assert.False(s.Has(EffectKind.TransferShare));
        Assert.Equal(DisputeStatus.Won, s.DisputeStatus);
    }

    [Fact]
    public void A_lost_dispute_is_recorded_transfers_nothing_and_tells_both_parties_why()
    {
        var s = AnEscrow.DisputedAndReversed();
        s = s.Then(new DisputeClosed("dp_1", Won: false), s.StatusChangedAt.AddDays(10));

        Assert.Equal(EscrowStatus.Released, s.Status);
        Assert.Equal(DisputeStatus.Lost, s.DisputeStatus);
        Assert.False(s.Has(EffectKind.TransferShare));
        Assert.Equal("dispute_lost", s.History[^1].Event);
        Assert.Single(s.Outbox, e => e.Kind == EffectKind.RaiseAlert && e.Alert?.Name == "dispute_lost");
        Assert.Equal(nameof(RefundCause.Dispute), s.Outbox.Single(e => e.Email == EmailKind.RefundIssued).Detail);
        Assert.Equal(nameof(RefundCause.Dispute), s.Outbox.Single(e => e.Email == EmailKind.MissedOpportunity).Detail);
        Assert.Equal("already_done", s.Decide(new DisputeClosed("dp_1", Won: true), s.StatusChangedAt.AddDays(11)).Rejection?.Code);
        Assert.Equal("no_dispute", s.Decide(new DisputeClosed("dp_other", Won: true), s.StatusChangedAt.AddDays(11)).Rejection?.Code);
    }
}
