using Orleans.Runtime;

namespace Escrow.Simulation;

/// <summary>What the fake Stripe holds for one PaymentIntent, and every money movement performed on it.</summary>
public sealed class SimPaymentIntent(string id, Guid escrowId, long amountMinor, string currency, string status)
{
    public string Id { get; } = id;
    public Guid EscrowId { get; } = escrowId;
    public long AmountMinor { get; } = amountMinor;
    public string Currency { get; } = currency;
    public string Status { get; set; } = status;
    public int Captures { get; set; }
    public int Cancels { get; set; }
    public int Refunds { get; set; }
    public long CapturedMinor { get; set; }
}

/// <summary>The fake Stripe of one seed: PaymentIntents, transfers by group, accounts, idempotency keys.</summary>
public sealed class SimStripe(SimFaults faults, TimeProvider clock)
{
    public readonly Lock Gate = new();
    public SimFaults Faults { get; } = faults;
    public TimeProvider Clock { get; } = clock;
    public Dictionary<string, object> ByKey { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, SimPaymentIntent> PaymentIntents { get; } = new(StringComparer.Ordinal);
    public Dictionary<Guid, List<TransferInfo>> Transfers { get; } = [];
    public Dictionary<string, bool> Accounts { get; } = new(StringComparer.Ordinal);

    /// <summary>When requests reached a refusal, per idempotency key (the refusal is saved under its key and replayed).</summary>
    public Dictionary<string, List<DateTimeOffset>> RefusedRequests { get; } = new(StringComparer.Ordinal);

    /// <summary>Disputes by PaymentIntent: "open", "won" or "lost". A disputed charge cannot be refunded.</summary>
    public Dictionary<string, string> Disputes { get; } = new(StringComparer.Ordinal);

    /// <summary>PaymentIntents that reached requires_capture: Stripe sends amount_capturable_updated for each.</summary>
    public List<SimPaymentIntent> Authorised { get; } = [];
    public int NextId { get; set; }

    public SimPaymentIntent? IntentOf(Guid escrowId)
    {
        lock (Gate)
        {
            return PaymentIntents.Values.FirstOrDefault(p => p.EscrowId == escrowId);
        }
    }

    public IReadOnlyList<TransferInfo> TransfersOf(Guid escrowId)
    {
        lock (Gate)
        {
            return Transfers.TryGetValue(escrowId, out var list) ? [.. list] : [];
        }
    }
}

/// <summary>
/// The Stripe stand-in of the simulation. It keeps Stripe's idempotency rule (the same key replays the first answer)
/// and injects, per call: 5xx and 429 before anything is done, slow answers (some past the client's timeout), lost
/// answers after the operation was performed, and a crash of the calling activation right after a capture, transfer,
/// cancel or refund was performed (the result is never written and must be re-driven).
/// </summary>
public sealed class SimPaymentGateway : IPaymentGateway
{
    public SimStripe World { get; set; } = null!;

    /// <summary>The silo's grain context accessor: a crash deactivates the calling activation.</summary>
    public IGrainContextAccessor? Contexts { get; set; }

    public Task<PaymentIntentInfo> CreatePaymentIntentAsync(Guid escrowId, Money amount, string? paymentMethodId, int attempt = 0, CancellationToken cancellationToken = default) =>
        CallAsync("create", escrowId.ToString(), StripePaymentGateway.Key(escrowId, "payment-intent", attempt), w =>
        {
            var id = $"pi_{++w.NextId}";
            if (paymentMethodId == "pm_card_chargeDeclined")
            {
                // As Stripe: the PaymentIntent exists, back in requires_payment_method, and comes with the error.
                var declined = new SimPaymentIntent(id, escrowId, amount.Minor, amount.Currency.Code, "requires_payment_method");
                w.PaymentIntents[id] = declined;
                throw new PaymentGatewayException(PaymentErrorKind.Declined, "card_declined", "Your card was declined.") { PaymentIntent = Info(declined) };
            }
            var pi = new SimPaymentIntent(id, escrowId, amount.Minor, amount.Currency.Code, paymentMethodId is null ? "requires_payment_method" : "requires_capture");
            w.PaymentIntents[id] = pi;
            if (pi.Status == "requires_capture")
            {
                w.Authorised.Add(pi);
            }
            return Info(pi);
        }, FaultKind.CrashAfterPaymentIntent);

    public Task<PaymentIntentInfo> GetPaymentIntentAsync(string paymentIntentId, CancellationToken cancellationToken = default)
    {
        lock (World.Gate)
        {
            return Task.FromResult(Info(World.PaymentIntents[paymentIntentId]));
        }
    }

    public async Task<PaymentIntentInfo?> FindPaymentIntentAsync(Guid escrowId, DateTimeOffset since, CancellationToken cancellationToken = default)
    {
        await BeforeAsync("find-payment-intent", escrowId.ToString());
        return World.IntentOf(escrowId) is { } pi ? Info(pi) : null;
    }

    public Task<PaymentIntentInfo> ConfirmPaymentIntentAsync(Guid escrowId, string paymentIntentId, string paymentMethodId, int retry, int attempt, CancellationToken cancellationToken = default) =>
        CallAsync("confirm", escrowId.ToString(), StripePaymentGateway.Key(escrowId, $"confirm/{retry}", attempt), w =>
        {
            var pi = w.PaymentIntents[paymentIntentId];
            if (pi.Status != "requires_payment_method")
            {
                throw new PaymentGatewayException(PaymentErrorKind.Rejected, "payment_intent_unexpected_state", pi.Status);
            }
            if (paymentMethodId == "pm_card_chargeDeclined")
            {
                throw new PaymentGatewayException(PaymentErrorKind.Declined, "card_declined", "Your card was declined.") { PaymentIntent = Info(pi) };
            }
            pi.Status = "requires_capture";
            w.Authorised.Add(pi);
            return Info(pi);
        });

    public async Task<IReadOnlyList<string>> FindRefundsAsync(string paymentIntentId, CancellationToken cancellationToken = default)
    {
        await BeforeAsync("find-refunds", paymentIntentId);
        lock (World.Gate)
        {
            return World.PaymentIntents.TryGetValue(paymentIntentId, out var pi) && pi.Refunds > 0 ? ["re_" + paymentIntentId] : [];
        }
    }

    public Task<IReadOnlyList<PaymentIntentInfo>> ListCapturedPaymentIntentsAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default)
    {
        lock (World.Gate)
        {
            return Task.FromResult<IReadOnlyList<PaymentIntentInfo>>(World.PaymentIntents.Values.Where(p => p.Status == "succeeded").Select(Info).ToList());
        }
    }

    public Task<string> CaptureAsync(Guid escrowId, string paymentIntentId, Money amount, int attempt, CancellationToken cancellationToken = default) =>
        CallAsync("capture", escrowId.ToString(), StripePaymentGateway.Key(escrowId, "capture", attempt), w =>
        {
            var pi = w.PaymentIntents[paymentIntentId];
            if (pi.Status != "requires_capture")
            {
                throw new PaymentGatewayException(PaymentErrorKind.Rejected, "payment_intent_unexpected_state", pi.Status);
            }
            pi.Status = "succeeded";
            pi.Captures++;
            pi.CapturedMinor = amount.Minor;
            return "ch_" + paymentIntentId;
        }, FaultKind.CrashAfterCapture, Refusal.Of(FaultKind.StripeRefused, "amount_too_large"));

    public Task CancelAsync(Guid escrowId, string paymentIntentId, int attempt, CancellationToken cancellationToken = default) =>
        CallAsync("cancel", escrowId.ToString(), StripePaymentGateway.Key(escrowId, "cancel", attempt), w =>
        {
            var pi = w.PaymentIntents[paymentIntentId];
            if (pi.Status == "succeeded")
            {
                throw new PaymentGatewayException(PaymentErrorKind.Rejected, "payment_intent_unexpected_state", "succeeded");
            }
            if (pi.Status != "canceled")
            {
                pi.Status = "canceled";
                pi.Cancels++;
            }
            return true;
        }, FaultKind.CrashAfterCancel, Refusal.Of(FaultKind.StripeRefused, "resource_missing"));

    public Task<string> RefundAsync(Guid escrowId, string paymentIntentId, int attempt, CancellationToken cancellationToken = default) =>
        CallAsync("refund", escrowId.ToString(), StripePaymentGateway.Key(escrowId, "refund", attempt), w =>
        {
            var pi = w.PaymentIntents[paymentIntentId];
            if (pi.Status != "succeeded")
            {
                throw new PaymentGatewayException(PaymentErrorKind.Rejected, "charge_not_captured", pi.Status);
            }
            // As Stripe: a charge under dispute cannot be refunded, and a lost one was already returned to the cardholder.
            if (w.Disputes.TryGetValue(pi.Id, out var dispute))
            {
                throw new PaymentGatewayException(PaymentErrorKind.Rejected, dispute == "lost" ? "charge_already_refunded" : "charge_disputed", pi.Id);
            }
            pi.Refunds++;
            return "re_" + paymentIntentId;
        }, FaultKind.CrashAfterRefund, Refusal.Of(FaultKind.StripeRefused, "charge_already_refunded"));

    public Task<TransferInfo> TransferAsync(Guid escrowId, int attempt, Money share, string destinationAccountId, string chargeId, CancellationToken cancellationToken = default) =>
        CallAsync("transfer", escrowId.ToString(), $"escrow/{escrowId}/transfer/{attempt}", w =>
        {
            var pi = w.PaymentIntents.Values.FirstOrDefault(p => "ch_" + p.Id == chargeId);
            if (pi is null || pi.Status != "succeeded")
            {
                throw new PaymentGatewayException(PaymentErrorKind.Rejected, "invalid_source_transaction", chargeId);
            }
            var transfer = new TransferInfo($"tr_{++w.NextId}", share.Minor, share.Currency.Code, destinationAccountId, chargeId);
            if (!w.Transfers.TryGetValue(escrowId, out var list))
            {
                w.Transfers[escrowId] = list = [];
            }
            list.Add(transfer);
            return transfer;
        }, FaultKind.CrashAfterTransfer);

    public Task<string> ReverseTransferAsync(Guid escrowId, string transferId, long amountMinor, int attempt, CancellationToken cancellationToken = default) =>
        CallAsync("reversal", escrowId.ToString(), StripePaymentGateway.Key(escrowId, $"reversal/{transferId}", attempt), w =>
        {
            var list = w.Transfers.GetValueOrDefault(escrowId) ?? [];
            var index = list.FindIndex(t => t.Id == transferId);
            if (index < 0)
            {
                throw new PaymentGatewayException(PaymentErrorKind.Rejected, "resource_missing", transferId);
            }
            if (list[index].Reversed)
            {
                throw new PaymentGatewayException(PaymentErrorKind.Rejected, "transfer_already_reversed", transferId);
            }
            list[index] = list[index] with { AmountReversedMinor = list[index].AmountMinor };
            return "trr_" + transferId;
        }, refusal: Refusal.Of(FaultKind.ReversalRefused, "balance_insufficient"));

    public async Task<IReadOnlyList<string>> FindTransferReversalsAsync(string transferId, CancellationToken cancellationToken = default)
    {
        await BeforeAsync("find-reversals", transferId);
        lock (World.Gate)
        {
            return World.Transfers.Values.SelectMany(l => l).Any(t => t.Id == transferId && t.Reversed) ? ["trr_" + transferId] : [];
        }
    }

    public async Task<IReadOnlyList<TransferInfo>> FindTransfersAsync(Guid escrowId, CancellationToken cancellationToken = default)
    {
        await BeforeAsync("find-transfers", escrowId.ToString());
        return World.TransfersOf(escrowId);
    }

    public Task<string> CreateConnectedAccountAsync(string recipientId, string email, string? country = null, CancellationToken cancellationToken = default)
    {
        lock (World.Gate)
        {
            var id = "acct_" + recipientId;
            World.Accounts.TryAdd(id, false);
            return Task.FromResult(id);
        }
    }

    public Task<string> CreateOnboardingLinkAsync(string accountId, string refreshUrl, string returnUrl, CancellationToken cancellationToken = default) =>
        Task.FromResult($"https://connect.invalid/{accountId}");

    public async Task<ConnectedAccountInfo> GetConnectedAccountAsync(string accountId, CancellationToken cancellationToken = default)
    {
        await BeforeAsync("account", accountId);
        lock (World.Gate)
        {
            var enabled = World.Accounts.TryGetValue(accountId, out var e) && e;
            return new ConnectedAccountInfo(accountId, enabled, enabled);
        }
    }

    private static PaymentIntentInfo Info(SimPaymentIntent pi) =>
        new(pi.Id, pi.Status, pi.Id + "_secret", pi.AmountMinor, pi.Currency, pi.Status == "succeeded" ? "ch_" + pi.Id : null, pi.EscrowId);

    /// <summary>Faults that happen before Stripe does anything: 429, 5xx, and a slow answer.</summary>
    private async Task<bool> BeforeAsync(string operation, string subject)
    {
        var w = World;
        var site = operation + "/" + subject;
        if (w.Faults.Roll(FaultKind.StripeRateLimited, site))
        {
            throw new PaymentGatewayException(PaymentErrorKind.Transient, "rate_limit", "Too many requests (injected 429).");
        }
        if (w.Faults.Roll(FaultKind.StripeServerError, site))
        {
            throw new PaymentGatewayException(PaymentErrorKind.Transient, "api_error", "Stripe answered 500 (injected).");
        }
        if (w.Faults.Roll(FaultKind.StripeSlow, site))
        {
            // A slow answer: the call stays pending while other grains run (the grain itself is not reentrant).
            for (var i = 0; i <= w.Faults.Pick(site, 20); i++)
            {
                await Task.Yield();
            }
            return w.Faults.Roll(FaultKind.StripeTimeout, site);
        }
        return false;
    }

    /// <summary>A permanent refusal the call may meet: Stripe answers 400 with this code, saved under the key.</summary>
    private sealed record Refusal(FaultKind Kind, string Code)
    {
        public static Refusal Of(FaultKind kind, string code) => new(kind, code);
    }

    private async Task<T> CallAsync<T>(string operation, string subject, string key, Func<SimStripe, T> perform, FaultKind? crash = null, Refusal? refusal = null)
    {
        var w = World;
        var site = operation + "/" + subject;
        var timedOut = await BeforeAsync(operation, subject);
        T result;
        lock (w.Gate)
        {
            if (w.ByKey.TryGetValue(key, out var replay))
            {
                if (replay is PaymentGatewayException refused)
                {
                    // Stripe replays a saved 4xx to every retry with the same key: asking again is a retry loop.
                    w.RefusedRequests[key].Add(w.Clock.GetUtcNow());
                    throw refused;
                }
                result = (T)replay;
            }
            else if (refusal is not null && w.Faults.Roll(refusal.Kind, site))
            {
                var refused = new PaymentGatewayException(PaymentErrorKind.Rejected, refusal.Code, $"Stripe refused the {operation} for good (injected {refusal.Code}).");
                w.ByKey[key] = refused;
                w.RefusedRequests[key] = [w.Clock.GetUtcNow()];
                throw refused;
            }
            else
            {
                result = perform(w);
                w.ByKey[key] = result!;
            }
        }
        if (crash is { } kind && w.Faults.Roll(kind, site))
        {
            // The silo dies right after Stripe did the work: the activation is gone, its answer with it.
            Contexts?.GrainContext?.Deactivate(new DeactivationReason(DeactivationReasonCode.ApplicationRequested, "simulated crash"));
            throw new SimulatedCrashException($"simulated crash after {operation} of {subject}");
        }
        if (timedOut)
        {
            throw new PaymentGatewayException(PaymentErrorKind.Transient, "timeout", "Stripe did not answer in time (injected; the operation was performed).");
        }
        if (w.Faults.Roll(FaultKind.StripeLostResponse, site))
        {
            throw new PaymentGatewayException(PaymentErrorKind.Transient, "lost_response", "The answer was lost (injected; the operation was performed).");
        }
        return result;
    }
}
