using Stripe;

namespace Escrow.Grains.Payments;

/// <summary>Stripe through Stripe.net only. Amounts are integer minor units; currencies are lower case only here.</summary>
public sealed class StripePaymentGateway(IStripeClient client, IOptions<StripeOptions> options) : IPaymentGateway
{
    private readonly PaymentIntentService _paymentIntents = new(client);
    private readonly TransferService _transfers = new(client);
    private readonly RefundService _refunds = new(client);
    private readonly TransferReversalService _reversals = new(client);
    private readonly AccountService _accounts = new(client);
    private readonly AccountLinkService _accountLinks = new(client);
    private readonly EventService _events = new(client);

    public static string Key(Guid escrowId, string operation) => $"escrow/{escrowId:D}/{operation}";

    /// <summary>The key of an operation's <paramref name="attempt"/>: the first keeps the plain key, later ones are numbered.</summary>
    public static string Key(Guid escrowId, string operation, int attempt) => attempt == 0 ? Key(escrowId, operation) : Key(escrowId, $"{operation}/{attempt}");

    public Task<PaymentIntentInfo> CreatePaymentIntentAsync(Guid escrowId, Money amount, string? paymentMethodId, int attempt = 0, CancellationToken cancellationToken = default) =>
        Call(async () =>
        {
            var create = new PaymentIntentCreateOptions
            {
                Amount = amount.Minor,
                Currency = amount.Currency.Code.ToLowerInvariant(),
                CaptureMethod = "manual",
                TransferGroup = escrowId.ToString("D"),
                Metadata = new Dictionary<string, string> { ["escrow_id"] = escrowId.ToString("D") },
                AutomaticPaymentMethods = new PaymentIntentAutomaticPaymentMethodsOptions { Enabled = true, AllowRedirects = "never" },
            };
            if (paymentMethodId is not null)
            {
                create.PaymentMethod = paymentMethodId;
                create.Confirm = true;
            }
            var intent = await _paymentIntents.CreateAsync(create, Options(Key(escrowId, "payment-intent", attempt)), cancellationToken);
            return ToInfo(intent);
        });

    public Task<PaymentIntentInfo> GetPaymentIntentAsync(string paymentIntentId, CancellationToken cancellationToken = default) =>
        Call(async () => ToInfo(await _paymentIntents.GetAsync(paymentIntentId, null, null, cancellationToken)));

    public Task<PaymentIntentInfo?> FindPaymentIntentAsync(Guid escrowId, DateTimeOffset since, CancellationToken cancellationToken = default) =>
        Call(async () =>
        {
            // The list is consistent at once (search is not); PaymentIntents are few in the minutes after one escrow's creation.
            var list = new PaymentIntentListOptions { Created = new DateRangeOptions { GreaterThanOrEqual = since.UtcDateTime }, Limit = 100 };
            await foreach (var intent in _paymentIntents.ListAutoPagingAsync(list, null, cancellationToken))
            {
                if (intent.Metadata?.TryGetValue("escrow_id", out var id) == true && id == escrowId.ToString("D"))
                {
                    return ToInfo(intent);
                }
            }
            return null;
        });

    public Task<PaymentIntentInfo> ConfirmPaymentIntentAsync(Guid escrowId, string paymentIntentId, string paymentMethodId, int retry, int attempt, CancellationToken cancellationToken = default) =>
        Call(async () => ToInfo(await _paymentIntents.ConfirmAsync(paymentIntentId, new PaymentIntentConfirmOptions { PaymentMethod = paymentMethodId },
            Options(Key(escrowId, $"confirm/{retry}", attempt)), cancellationToken)));

    public Task<string> CaptureAsync(Guid escrowId, string paymentIntentId, Money amount, int attempt, CancellationToken cancellationToken = default) =>
        Call(async () =>
        {
            var intent = await _paymentIntents.CaptureAsync(paymentIntentId, new PaymentIntentCaptureOptions { AmountToCapture = amount.Minor },
                Options(Key(escrowId, "capture", attempt)), cancellationToken);
            return intent.LatestChargeId ?? throw new PaymentGatewayException(PaymentErrorKind.Rejected, "no_charge", $"Captured payment intent {paymentIntentId} has no charge.");
        });

    public Task CancelAsync(Guid escrowId, string paymentIntentId, int attempt, CancellationToken cancellationToken = default) =>
        Call(async () =>
        {
            try
            {
                await _paymentIntents.CancelAsync(paymentIntentId, new PaymentIntentCancelOptions { CancellationReason = "abandoned" },
                    Options(Key(escrowId, "cancel", attempt)), cancellationToken);
            }
            catch (StripeException e) when (e.StripeError?.Code == "payment_intent_unexpected_state")
            {
                // Cancelled already (by us earlier, or expired): that is the outcome we want. Anything else is an error.
                var intent = await _paymentIntents.GetAsync(paymentIntentId, null, null, cancellationToken);
                if (intent.Status != "canceled")
                {
                    throw;
                }
            }
            return true;
        });

    public Task<string> RefundAsync(Guid escrowId, string paymentIntentId, int attempt, CancellationToken cancellationToken = default) =>
        Call(async () =>
        {
            var refund = await _refunds.CreateAsync(new RefundCreateOptions
            {
                PaymentIntent = paymentIntentId,
                Reason = "requested_by_customer",
                Metadata = new Dictionary<string, string> { ["escrow_id"] = escrowId.ToString("D") },
            }, Options(Key(escrowId, "refund", attempt)), cancellationToken);
            return refund.Id;
        });

    public Task<IReadOnlyList<string>> FindRefundsAsync(string paymentIntentId, CancellationToken cancellationToken = default) =>
        Call<IReadOnlyList<string>>(async () =>
        {
            var list = await _refunds.ListAsync(new RefundListOptions { PaymentIntent = paymentIntentId, Limit = 100 }, null, cancellationToken);
            return [.. list.Data.Where(r => r.Status is "succeeded" or "pending" or "requires_action").Select(r => r.Id)];
        });

    public Task<TransferInfo> TransferAsync(Guid escrowId, int attempt, Money share, string destinationAccountId, string chargeId, CancellationToken cancellationToken = default) =>
        Call(async () =>
        {
            var transfer = await _transfers.CreateAsync(new TransferCreateOptions
            {
                Amount = share.Minor,
                Currency = share.Currency.Code.ToLowerInvariant(),
                Destination = destinationAccountId,
                SourceTransaction = chargeId,
                TransferGroup = escrowId.ToString("D"),
                Metadata = new Dictionary<string, string> { ["escrow_id"] = escrowId.ToString("D") },
            }, Options(Key(escrowId, $"transfer/{attempt}")), cancellationToken);
            return ToInfo(transfer);
        });

    public Task<string> ReverseTransferAsync(Guid escrowId, string transferId, long amountMinor, int attempt, CancellationToken cancellationToken = default) =>
        Call(async () =>
        {
            var reversal = await _reversals.CreateAsync(transferId, new TransferReversalCreateOptions
            {
                Amount = amountMinor,
                Metadata = new Dictionary<string, string> { ["escrow_id"] = escrowId.ToString("D") },
            }, Options(Key(escrowId, $"reversal/{transferId}", attempt)), cancellationToken);
            return reversal.Id;
        });

    public Task<IReadOnlyList<string>> FindTransferReversalsAsync(string transferId, CancellationToken cancellationToken = default) =>
        Call<IReadOnlyList<string>>(async () =>
        {
            var list = await _reversals.ListAsync(transferId, new TransferReversalListOptions { Limit = 100 }, null, cancellationToken);
            return [.. list.Data.Select(r => r.Id)];
        });

    public Task<IReadOnlyList<TransferInfo>> FindTransfersAsync(Guid escrowId, CancellationToken cancellationToken = default) =>
        Call<IReadOnlyList<TransferInfo>>(async () =>
        {
            var list = await _transfers.ListAsync(new TransferListOptions { TransferGroup = escrowId.ToString("D"), Limit = 100 }, null, cancellationToken);
            return list.Data.Select(ToInfo).ToList();
        });

    public Task<IReadOnlyList<PaymentIntentInfo>> ListCapturedPaymentIntentsAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default) =>
        Call<IReadOnlyList<PaymentIntentInfo>>(async () =>
        {
            var captured = new Dictionary<string, PaymentIntentInfo>(StringComparer.Ordinal);
            var list = new EventListOptions
            {
                Type = "payment_intent.succeeded",
                Created = new DateRangeOptions { GreaterThanOrEqual = from.UtcDateTime, LessThan = to.UtcDateTime },
                Limit = 100,
            };
            await foreach (var e in _events.ListAutoPagingAsync(list, null, cancellationToken))
            {
                if (e.Data.Object is PaymentIntent intent && e.Created >= from.UtcDateTime && e.Created < to.UtcDateTime)
                {
                    captured[intent.Id] = ToInfo(intent);
                }
            }
            return captured.Values.ToList();
        });

    public Task<string> CreateConnectedAccountAsync(string recipientId, string email, string? country = null, CancellationToken cancellationToken = default) =>
        Call(async () =>
        {
            var accountCountry = (country ?? options.Value.ConnectCountry).ToUpperInvariant();
            var account = await _accounts.CreateAsync(new AccountCreateOptions
            {
                Type = "express",
                Country = accountCountry,
                Email = email,
                // Recipients only receive transfers: card_payments would add requirements and is refused cross-border.
                Capabilities = new AccountCapabilitiesOptions
                {
                    Transfers = new AccountCapabilitiesTransfersOptions { Requested = true },
                },
                // A platform pays an account in another country only under the recipient service agreement.
                TosAcceptance = string.Equals(accountCountry, options.Value.PlatformCountry, StringComparison.OrdinalIgnoreCase)
                    ? null
                    : new AccountTosAcceptanceOptions { ServiceAgreement = "recipient" },
                Metadata = new Dictionary<string, string> { ["recipient_id"] = recipientId },
            }, Options($"recipient/{recipientId}/account"), cancellationToken);
            return account.Id;
        });

    public Task<string> CreateOnboardingLinkAsync(string accountId, string refreshUrl, string returnUrl, CancellationToken cancellationToken = default) =>
        Call(async () =>
        {
            // Account links are single-use and short-lived: no idempotency key would help, so Stripe.net's own is used.
            var link = await _accountLinks.CreateAsync(new AccountLinkCreateOptions
            {
                Account = accountId,
                RefreshUrl = refreshUrl,
                ReturnUrl = returnUrl,
                Type = "account_onboarding",
                Collect = "eventually_due",
            }, null, cancellationToken);
            return link.Url;
        });

    public Task<ConnectedAccountInfo> GetConnectedAccountAsync(string accountId, CancellationToken cancellationToken = default) =>
        Call(async () =>
        {
            var account = await _accounts.GetAsync(accountId, null, null, cancellationToken);
            return new ConnectedAccountInfo(account.Id, account.PayoutsEnabled, account.Capabilities?.Transfers == "active");
        });

    private static RequestOptions Options(string idempotencyKey) => new() { IdempotencyKey = idempotencyKey };

    private static PaymentIntentInfo ToInfo(PaymentIntent p) =>
        new(p.Id, p.Status, p.ClientSecret, p.Amount, p.Currency.ToUpperInvariant(), p.LatestChargeId,
            p.Metadata?.TryGetValue("escrow_id", out var id) == true && Guid.TryParse(id, out var escrowId) ? escrowId : null);

    private static TransferInfo ToInfo(Transfer t) =>
        new(t.Id, t.Amount, t.Currency.ToUpperInvariant(), t.DestinationId, t.SourceTransactionId, t.AmountReversed);

    private static async Task<T> Call<T>(Func<Task<T>> call)
    {
        try
        {
            return await call();
        }
        catch (StripeException e)
        {
            throw Classify(e);
        }
        catch (HttpRequestException e)
        {
            throw new PaymentGatewayException(PaymentErrorKind.Transient, "network_error", "Stripe could not be reached.", e);
        }
        catch (TaskCanceledException e)
        {
            throw new PaymentGatewayException(PaymentErrorKind.Transient, "timeout", "Stripe did not answer in time.", e);
        }
    }

    private static PaymentGatewayException Classify(StripeException e)
    {
        var code = e.StripeError?.Code ?? e.StripeError?.Type ?? "stripe_error";
        var status = (int)e.HttpStatusCode;
        var kind = e.StripeError?.Type switch
        {
            "card_error" => PaymentErrorKind.Declined,
            _ when Domain.StripeRefusals.IsPermanent(status, e.StripeError?.Type, e.StripeError?.Code) => PaymentErrorKind.Rejected,
            _ => PaymentErrorKind.Transient,
        };
        return new PaymentGatewayException(kind, code, e.Message, e)
        {
            PaymentIntent = e.StripeError?.PaymentIntent is { } intent ? ToInfo(intent) : null,
        };
    }
}
