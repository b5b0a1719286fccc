namespace Escrow.Grains.Domain;

/// <summary>A broken invariant is a bug, never a business outcome: it fails loudly.</summary>
public sealed class EscrowInvariantException(Guid escrowId, string what)
    : Exception($"Escrow {escrowId} broke an invariant: {what}.")
{
    public Guid EscrowId { get; } = escrowId;
}

public static class EscrowInvariants
{
    /// <summary>Checked after every decision and on activation.</summary>
    public static void Check(EscrowState s)
    {
        if (!s.Exists)
        {
            return;
        }
        void Require(bool condition, string what)
        {
            if (!condition)
            {
                throw new EscrowInvariantException(s.Id, what);
            }
        }
        Require(s.Amount.Minor > 0, "the amount is positive");
        Require(s.Split.RecipientShare + s.Split.PlatformFee == s.Amount, "share + fee == amount");
        Require(s.Split.RecipientShare.Minor >= 0 && s.Split.PlatformFee.Minor >= 0, "share and fee are not negative");
        Require(s.ReplyDeadline >= s.Deadline, "the reply deadline is not before the deadline");
        Require(s.TransferId is null || s.ChargeId is not null, "a transfer needs a captured charge");
        Require(s.Status != EscrowStatus.Released || s.TransferId is not null, "a released escrow has a transfer");
        Require(s.Status is not (EscrowStatus.PendingUserSetup or EscrowStatus.TransferFailed) || s.ChargeId is not null,
            "pending_user_setup and transfer_failed escrows are captured");
        Require(!(s.Status == EscrowStatus.Refunded && s.TransferId is not null && !s.ShareReversed), "a refunded escrow has no transfer it did not reverse");
        Require(s.History.Length <= EscrowState.HistoryEntriesMax, "the history is bounded");
        Require(s.Outbox.Length <= EscrowState.OutboxEffectsMax, "the outbox is bounded");
        Require(s.Outbox.Select(e => e.Id).Distinct().Count() == s.Outbox.Length, "effect ids are unique");
        Require(s.Outbox.Count(e => e.Kind == EffectKind.TransferShare) <= 1, "at most one transfer is pending");
        Require(!(s.IsTerminal && s.Outbox.Any(e => e.Kind is EffectKind.CapturePayment or EffectKind.TransferShare)), "a terminal escrow moves no more money");
        Require(!(s.ChargeId is not null && s.Outbox.Any(e => e.Kind == EffectKind.CancelPaymentIntent)), "a captured payment is never cancelled");
    }
}
