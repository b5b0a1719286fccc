using System.Collections.Concurrent;
using Escrow.Grains.Payments;

namespace Escrow.Tests.Grains;

/// <summary>
/// A recording stand-in for Stripe that keeps Stripe's idempotency rule (the same key replays the first answer)
/// and lets a test queue failures per operation.
/// </summary>
public sealed class FakePaymentGateway : IPaymentGateway
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, object> _byKey = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ConcurrentQueue<Exception>> _failures = new(StringComparer.Ordinal);
    private int _next;

    public ConcurrentDictionary<string, PaymentIntentInfo> PaymentIntents { get; } = new(StringComparer.Ordinal);

    public ConcurrentBag<TransferInfo> Transfers { get; } = [];

    public ConcurrentBag<string> Calls { get; } = [];

    public ConcurrentDictionary<string, bool> AccountsEnabled { get; } = new(StringComparer.Ordinal);

    /// <summary>The next call of <paramref name="operation"/> (capture, cancel, transfer, create, refund) throws.</summary>
    public void FailNext(string operation, PaymentErrorKind kind, string code = "api_error") =>
        _failures.GetOrAdd(operation, _ => new()).Enqueue(new PaymentGatewayException(kind, code, $"injected {kind} on {operation}"));

    /// <summary>The next call of <paramref name="operation"/> is performed, and then its answer is lost (a transient error).</summary>
    public void LoseNextResponse(string operation) => _lost.GetOrAdd(operation, _ => new()).Enqueue(true);

    private readonly ConcurrentDictionary<string, ConcurrentQueue<bool>> _lost = new(StringComparer.Ordinal);

    public int CountCalls(string operation) => Calls.Count(c => c == operation);

    public Task<PaymentIntentInfo> CreatePaymentIntentAsync(Guid escrowId, Money amount, string? paymentMethodId, int attempt = 0, CancellationToken cancellationToken = default) =>
        Once("create", StripePaymentGateway.Key(escrowId, "payment-intent", attempt), () =>
        {
            var id = $"pi_{Interlocked.Increment(ref _next)}";
            if (paymentMethodId == "pm_card_chargeDeclined")
            {
                // As Stripe: the PaymentIntent exists, back in requires_payment_method, and comes with the error.
                var declined = new PaymentIntentInfo(id, "requires_payment_method", id + "_secret", amount.Minor, amount.Currency.Code, null, escrowId);
                PaymentIntents[id] = declined;
                throw new PaymentGatewayException(PaymentErrorKind.Declined, "card_declined", "Your card was declined.") { PaymentIntent = declined };
            }
            var info = new PaymentIntentInfo(id, paymentMethodId is null ? "requires_payment_method" : "requires_capture", id + "_secret", amount.Minor, amount.Currency.Code, null, escrowId);
            PaymentIntents[id] = info;
            return info;
        });

    public Task<PaymentIntentInfo> GetPaymentIntentAsync(string paymentIntentId, CancellationToken cancellationToken = default) =>
        Task.FromResult(PaymentIntents[paymentIntentId]);

    public Task<PaymentIntentInfo?> FindPaymentIntentAsync(Guid escrowId, DateTimeOffset since, CancellationToken cancellationToken = default)
    {
        Calls.Add("find-payment-intent");
        return Task.FromResult(PaymentIntents.Values.FirstOrDefault(p => p.EscrowId == escrowId));
    }

    public Task<PaymentIntentInfo> ConfirmPaymentIntentAsync(Guid escrowId, string paymentIntentId, string paymentMethodId, int retry, int attempt, CancellationToken cancellationToken = default) =>
        Once("confirm", StripePaymentGateway.Key(escrowId, $"confirm/{retry}", attempt), () =>
        {
            var pi = PaymentIntents[paymentIntentId];
            if (paymentMethodId == "pm_card_chargeDeclined")
            {
                throw new PaymentGatewayException(PaymentErrorKind.Declined, "card_declined", "Your card was declined.") { PaymentIntent = pi };
            }
            return PaymentIntents[paymentIntentId] = pi with { Status = "requires_capture" };
        });

    public Task<IReadOnlyList<string>> FindRefundsAsync(string paymentIntentId, CancellationToken cancellationToken = default)
    {
        Calls.Add("find-refunds");
        return Task.FromResult<IReadOnlyList<string>>(_byKey.Values.OfType<string>().Where(r => r == "re_" + paymentIntentId).ToList());
    }

    public Task<string> CaptureAsync(Guid escrowId, string paymentIntentId, Money amount, int attempt, CancellationToken cancellationToken = default) =>
        Once("capture", StripePaymentGateway.Key(escrowId, "capture", attempt), () =>
        {
            var pi = PaymentIntents[paymentIntentId];
            if (pi.Status != "requires_capture")
            {
                throw new PaymentGatewayException(PaymentErrorKind.Rejected, "payment_intent_unexpected_state", $"{pi.Status}");
            }
            PaymentIntents[paymentIntentId] = pi with { Status = "succeeded", LatestChargeId = "ch_" + paymentIntentId };
            return "ch_" + paymentIntentId;
        });

    public Task CancelAsync(Guid escrowId, string paymentIntentId, int attempt, CancellationToken cancellationToken = default) =>
        Once("cancel", StripePaymentGateway.Key(escrowId, "cancel", attempt), () =>
        {
            var pi = PaymentIntents[paymentIntentId];
            if (pi.Status == "succeeded")
            {
                throw new PaymentGatewayException(PaymentErrorKind.Rejected, "payment_intent_unexpected_state", "succeeded");
            }
            PaymentIntents[paymentIntentId] = pi with { Status = "canceled" };
            return true;
        });

    public Task<string> RefundAsync(Guid escrowId, string paymentIntentId, int attempt, CancellationToken cancellationToken = default) =>
        Once("refund", StripePaymentGateway.Key(escrowId, "refund", attempt), () => "re_" + paymentIntentId);

    public Task<TransferInfo> TransferAsync(Guid escrowId, int attempt, Money share, string destinationAccountId, string chargeId, CancellationToken cancellationToken = default) =>
        Once("transfer", $"escrow/{escrowId}/transfer/{attempt}", () =>
        {
            var transfer = new TransferInfo($"tr_{Interlocked.Increment(ref _next)}", share.Minor, share.Currency.Code, destinationAccountId, chargeId);
            Transfers.Add(transfer);
            _groups.GetOrAdd(escrowId, _ => []).Add(transfer);
            return transfer;
        });

    private readonly ConcurrentDictionary<Guid, ConcurrentBag<TransferInfo>> _groups = new();

    public ConcurrentDictionary<string, string> Reversals { get; } = new();

    public Task<string> ReverseTransferAsync(Guid escrowId, string transferId, long amountMinor, int attempt, CancellationToken cancellationToken = default) =>
        Once("reversal", StripePaymentGateway.Key(escrowId, $"reversal/{transferId}", attempt), () => Reversals.GetOrAdd(transferId, id => "trr_" + id));

    public Task<IReadOnlyList<string>> FindTransferReversalsAsync(string transferId, CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<string>>(Reversals.TryGetValue(transferId, out var id) ? [id] : []);

    /// <summary>A transfer someone else made in the escrow's transfer group (not by this service).</summary>
    public void PlantTransfer(Guid escrowId, TransferInfo transfer) => _groups.GetOrAdd(escrowId, _ => []).Add(transfer);

    public Task<IReadOnlyList<TransferInfo>> FindTransfersAsync(Guid escrowId, CancellationToken cancellationToken = default)
    {
        Calls.Add("find-transfers");
        return Task.FromResult<IReadOnlyList<TransferInfo>>(_groups.TryGetValue(escrowId, out var list) ? [.. list] : []);
    }

    public Task<IReadOnlyList<PaymentIntentInfo>> ListCapturedPaymentIntentsAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<PaymentIntentInfo>>(PaymentIntents.Values.Where(p => p.Status == "succeeded").ToList());

    public Task<string> CreateConnectedAccountAsync(string recipientId, string email, string? country = null, CancellationToken cancellationToken = default) =>
        Once("account", $"recipient/{recipientId}/account", () =>
        {
            var id = "acct_" + recipientId;
            AccountsEnabled.TryAdd(id, false);
            return id;
        });

    public Task<string> CreateOnboardingLinkAsync(string accountId, string refreshUrl, string returnUrl, CancellationToken cancellationToken = default) =>
        Task.FromResult($"https://connect.invalid/{accountId}");

    /// <summary>Reads of each connected account (the recipient's poll reads it once a tick).</summary>
    public ConcurrentDictionary<string, int> AccountReads { get; } = new(StringComparer.Ordinal);

    public Task<ConnectedAccountInfo> GetConnectedAccountAsync(string accountId, CancellationToken cancellationToken = default)
    {
        AccountReads.AddOrUpdate(accountId, 1, (_, n) => n + 1);
        var enabled = AccountsEnabled.TryGetValue(accountId, out var e) && e;
        return Task.FromResult(new ConnectedAccountInfo(accountId, enabled, enabled));
    }

    /// <summary>Performs the operation once per idempotency key; a queued failure is thrown before anything is done.</summary>
    private Task<T> Once<T>(string operation, string key, Func<T> perform)
    {
        Calls.Add(operation);
        if (_failures.TryGetValue(operation, out var queue) && queue.TryDequeue(out var failure))
        {
            return Task.FromException<T>(failure);
        }
        lock (_lock)
        {
            if (_byKey.TryGetValue(key, out var replay))
            {
                return Task.FromResult((T)replay);
            }
            var result = perform();
            _byKey[key] = result!;
            if (_lost.TryGetValue(operation, out var lost) && lost.TryDequeue(out _))
            {
                return Task.FromException<T>(new PaymentGatewayException(PaymentErrorKind.Transient, "lost_response", $"the answer to {operation} was lost"));
            }
            return Task.FromResult(result);
        }
    }
}
