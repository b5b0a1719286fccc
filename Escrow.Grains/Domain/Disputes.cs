namespace Escrow.Grains.Domain;

/// <summary>
/// The dispute rule: while a dispute is open no money moves automatically. Timed and automatic commands are refused
/// (<see cref="Stops(EscrowCommand)"/>), the schedule has nothing due, and the outbox keeps its money movements until the
/// dispute closes (<see cref="Holds(EffectKind)"/>); e-mails, alerts, slots and audit rows still run, and so do the
/// reversal that takes the recipient's share back for the dispute and the cancel that lets go of an uncaptured hold.
/// </summary>
public static class Disputes
{
    /// <summary>A command that happens by itself (a reply, a due time, a recipient's payouts) and is refused while a dispute is open.</summary>
    public static bool Stops(EscrowCommand c) =>
        c is AcceptReply or DeadlinePassed or DeadlineReminderDue or TransferRetryDue or RefundPermitRetryDue or RecipientPayoutsEnabled or UnpaidExpired
            or PayoutCheckDue;

    /// <summary>
    /// An effect that waits in the outbox while a dispute is open: every money movement but the reversal, and the refund's
    /// permit. Cancelling the PaymentIntent runs: it only ever lets go of an authorisation nothing captured, so it cannot
    /// touch the disputed money, and held back it would leave the hold on the sender's card for as long as the dispute.
    /// </summary>
    public static bool Holds(EffectKind kind) =>
        (kind.MovesMoney() && kind is not (EffectKind.ReverseTransfer or EffectKind.CancelPaymentIntent))
        || kind == EffectKind.RequestRefundPermit;

    /// <summary>Whether the effect may run now.</summary>
    public static bool MayRun(EscrowState s, PendingEffect e) => !s.DisputeOpen || !Holds(e.Kind);
}
