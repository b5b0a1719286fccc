namespace Escrow.Grains.Domain;

/// <summary>Which effects move money: the one list the machine, the dispute rule and the retry rule read.</summary>
public static class EffectKinds
{
    /// <summary>A Stripe call that holds, takes, pays out or gives back money.</summary>
    public static bool MovesMoney(this EffectKind kind) =>
        kind is EffectKind.CreatePaymentIntent or EffectKind.ConfirmPayment or EffectKind.CapturePayment or EffectKind.TransferShare
            or EffectKind.CancelPaymentIntent or EffectKind.RefundPayment or EffectKind.ReverseTransfer;

    /// <summary>
    /// A money movement back to the sender: cancelling the hold, refunding the charge, or taking the recipient's share
    /// back first. Once one is in the outbox the refund has started; refused for good, it ends for an operator.
    /// </summary>
    public static bool MovesMoneyBack(this EffectKind kind) =>
        kind is EffectKind.CancelPaymentIntent or EffectKind.RefundPayment or EffectKind.ReverseTransfer;

    /// <summary>
    /// A money movement whose Stripe idempotency key is numbered by the effect's own key attempt (a transfer's key is
    /// the escrow's, <see cref="EscrowState.TransferKeyAttempt"/>).
    /// </summary>
    public static bool HasOwnKeyAttempts(this EffectKind kind) => kind.MovesMoney() && kind != EffectKind.TransferShare;
}
