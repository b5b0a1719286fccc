namespace Escrow;

/// <summary>The lifecycle of an escrow (DESIGN §3). Wire names are snake_case.</summary>
public enum EscrowStatus
{
    AwaitingPayment = 0,
    Held = 1,
    Processing = 2,
    PendingUserSetup = 3,
    TransferFailed = 4,
    RefundPending = 5,
    Released = 6,
    Refunded = 7,
    PaymentFailed = 8,
    Cancelled = 9,
}

public static class EscrowStatusNames
{
    public static string ToWire(this EscrowStatus status) => status switch
    {
        EscrowStatus.AwaitingPayment => "awaiting_payment",
        EscrowStatus.Held => "held",
        EscrowStatus.Processing => "processing",
        EscrowStatus.PendingUserSetup => "pending_user_setup",
        EscrowStatus.TransferFailed => "transfer_failed",
        EscrowStatus.RefundPending => "refund_pending",
        EscrowStatus.Released => "released",
        EscrowStatus.Refunded => "refunded",
        EscrowStatus.PaymentFailed => "payment_failed",
        EscrowStatus.Cancelled => "cancelled",
        _ => throw new ArgumentOutOfRangeException(nameof(status), status, null),
    };

    public static bool TryParseWire(string? wire, out EscrowStatus status)
    {
        foreach (var candidate in Enum.GetValues<EscrowStatus>())
        {
            if (string.Equals(candidate.ToWire(), wire, StringComparison.Ordinal))
            {
                status = candidate;
                return true;
            }
        }
        status = default;
        return false;
    }

    public static bool IsTerminal(this EscrowStatus status) =>
        status is EscrowStatus.Released or EscrowStatus.Refunded or EscrowStatus.PaymentFailed or EscrowStatus.Cancelled;
}
