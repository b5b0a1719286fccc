namespace Escrow.Grains.Payments;

/// <summary>
/// The money movements the escrow needs, in the escrow's words. Every write carries a deterministic idempotency
/// key derived from the escrow id and the operation, so a retry after a crash or a lost answer pays nothing twice.
/// </summary>
/// <remarks>
/// Stripe saves the answer of a request under its idempotency key, a 500 included, and replays it for a day. So a
/// failed call is never retried with the same key: <paramref name="attempt"/> numbers the key
/// (<c>escrow/{id}/capture</c>, then <c>escrow/{id}/capture/1</c>, ...), and the caller reads the object first to
/// learn whether the failed call was performed after all.
/// </remarks>
public interface IPaymentGateway
{
    Task<PaymentIntentInfo> CreatePaymentIntentAsync(Guid escrowId, Money amount, string? paymentMethodId, int attempt = 0, CancellationToken cancellationToken = default);

    Task<PaymentIntentInfo> GetPaymentIntentAsync(string paymentIntentId, CancellationToken cancellationToken = default);

    /// <summary>The escrow's PaymentIntent created since <paramref name="since"/>, if Stripe has one (found by its metadata).</summary>
    Task<PaymentIntentInfo?> FindPaymentIntentAsync(Guid escrowId, DateTimeOffset since, CancellationToken cancellationToken = default);

    /// <summary>Confirms a declined PaymentIntent again with another payment method: the sender's <paramref name="retry"/>-th retry.</summary>
    Task<PaymentIntentInfo> ConfirmPaymentIntentAsync(Guid escrowId, string paymentIntentId, string paymentMethodId, int retry, int attempt, CancellationToken cancellationToken = default);

    /// <summary>Captures the authorisation in full and returns the captured charge id.</summary>
    Task<string> CaptureAsync(Guid escrowId, string paymentIntentId, Money amount, int attempt, CancellationToken cancellationToken = default);

    /// <summary>Cancels an uncaptured authorisation (a deadline refund). An already cancelled intent counts as done.</summary>
    Task CancelAsync(Guid escrowId, string paymentIntentId, int attempt, CancellationToken cancellationToken = default);

    /// <summary>Refunds a captured payment in full (an operator's refund after capture).</summary>
    Task<string> RefundAsync(Guid escrowId, string paymentIntentId, int attempt, CancellationToken cancellationToken = default);

    /// <summary>The refunds of a PaymentIntent that succeeded or are under way.</summary>
    Task<IReadOnlyList<string>> FindRefundsAsync(string paymentIntentId, CancellationToken cancellationToken = default);

    /// <summary>Transfers the recipient's share from the captured charge. <paramref name="attempt"/> is part of the idempotency key.</summary>
    Task<TransferInfo> TransferAsync(Guid escrowId, int attempt, Money share, string destinationAccountId, string chargeId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Takes <paramref name="amountMinor"/> of a transfer back from the connected account (POST /v1/transfers/{id}/reversals),
    /// under the key <c>escrow/{id}/reversal/{transferId}</c> (numbered by <paramref name="attempt"/>); returns the reversal's id.
    /// </summary>
    Task<string> ReverseTransferAsync(Guid escrowId, string transferId, long amountMinor, int attempt, CancellationToken cancellationToken = default);

    /// <summary>The reversals of a transfer, newest first.</summary>
    Task<IReadOnlyList<string>> FindTransferReversalsAsync(string transferId, CancellationToken cancellationToken = default);

    /// <summary>The transfers already made for this escrow (transfer_group = escrow id).</summary>
    Task<IReadOnlyList<TransferInfo>> FindTransfersAsync(Guid escrowId, CancellationToken cancellationToken = default);

    /// <summary>The payment intents captured in [from, to) (Stripe's payment_intent.succeeded events), for reconciliation.</summary>
    Task<IReadOnlyList<PaymentIntentInfo>> ListCapturedPaymentIntentsAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default);

    /// <summary>An Express account with the transfers capability only; <paramref name="country"/> null means Stripe:ConnectCountry.</summary>
    Task<string> CreateConnectedAccountAsync(string recipientId, string email, string? country = null, CancellationToken cancellationToken = default);

    Task<string> CreateOnboardingLinkAsync(string accountId, string refreshUrl, string returnUrl, CancellationToken cancellationToken = default);

    Task<ConnectedAccountInfo> GetConnectedAccountAsync(string accountId, CancellationToken cancellationToken = default);
}

public sealed record PaymentIntentInfo(string Id, string Status, string? ClientSecret, long AmountMinor, string Currency, string? LatestChargeId, Guid? EscrowId = null);

public sealed record TransferInfo(string Id, long AmountMinor, string Currency, string DestinationAccountId, string? SourceTransaction, long AmountReversedMinor = 0)
{
    /// <summary>Taken back from the recipient in full: it pays nothing, so it is never adopted as the escrow's payout.</summary>
    public bool Reversed => AmountReversedMinor >= AmountMinor;
}

public sealed record ConnectedAccountInfo(string Id, bool PayoutsEnabled, bool TransfersActive)
{
    /// <summary>Transfers need the transfers capability only: payouts_enabled is about the account's bank payouts.</summary>
    public bool CanReceiveTransfers => TransfersActive;
}

public enum PaymentErrorKind
{
    /// <summary>Worth retrying with the same idempotency key: 5xx, 429, network.</summary>
    Transient = 0,

    /// <summary>The card was declined: never retried.</summary>
    Declined = 1,

    /// <summary>Stripe refused the request for good (4xx): retrying the same request cannot help.</summary>
    Rejected = 2,
}

public sealed class PaymentGatewayException(PaymentErrorKind kind, string code, string message, Exception? inner = null)
    : Exception(message, inner)
{
    public PaymentErrorKind Kind { get; } = kind;

    public string Code { get; } = code;

    /// <summary>A declined confirm's PaymentIntent, as Stripe returns it with the error (requires_payment_method).</summary>
    public PaymentIntentInfo? PaymentIntent { get; init; }
}
