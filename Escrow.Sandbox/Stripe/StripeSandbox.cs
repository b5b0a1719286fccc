using System.Security.Cryptography;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.Extensions.Options;

namespace Escrow.Sandbox;

/// <summary>
/// The in-memory state of the Stripe emulator. Thread-safe: every operation runs under one lock.
/// Tests read snapshots from it; the endpoints in <see cref="StripeSandboxEndpoints"/> drive it.
/// </summary>
public sealed partial class StripeSandbox
{
    private static readonly string[] CancellableStatuses =
        ["requires_payment_method", "requires_confirmation", "requires_action", "requires_capture", "processing"];

    private static readonly string[] CancellationReasons =
        ["duplicate", "fraudulent", "requested_by_customer", "abandoned"];

    private readonly Lock _gate = new();
    private readonly SandboxOptions _options;
    private readonly TimeProvider _time;
    private readonly PersistentMap<SandboxPaymentIntent> _paymentIntents;
    private readonly PersistentMap<SandboxCharge> _charges;
    private readonly PersistentMap<SandboxTransfer> _transfers;
    // Amount transferred so far from each source charge: a transfer's check without a scan of every transfer.
    private readonly Dictionary<string, long> _transferredFromCharge = new(StringComparer.Ordinal);
    private readonly PersistentMap<SandboxRefund> _refunds;
    private readonly PersistentMap<SandboxTransferReversal> _transferReversals;
    private readonly PersistentMap<SandboxDispute> _disputes;
    private readonly PersistentMap<SandboxAccount> _accounts;
    private readonly PersistentMap<SandboxEvent> _events;
    private readonly PersistentMap<SandboxAccountLink> _accountLinks;
    private readonly PersistentMap<StoredResponse> _idempotency;
    // Events not yet delivered to the webhook: after a restart their delivery starts again, as Stripe's retries go on.
    private readonly PersistentMap<string> _undelivered;
    private readonly SandboxJournal? _journal;
    private readonly Dictionary<string, List<Fault>> _faults = new(StringComparer.Ordinal);
    private readonly List<SandboxRequest> _requests = [];
    private readonly List<SandboxWebhookAttempt> _attempts = [];
    private readonly Channel<WebhookDelivery> _deliveries = Channel.CreateUnbounded<WebhookDelivery>(
        new UnboundedChannelOptions { SingleReader = false });

    internal StripeSandbox(IOptions<SandboxOptions> options, TimeProvider time, SandboxJournal? journal = null)
    {
        _options = options.Value;
        _time = time;
        _journal = journal;
        _paymentIntents = new("stripe.payment_intent", journal);
        _charges = new("stripe.charge", journal);
        _transfers = new("stripe.transfer", journal);
        _refunds = new("stripe.refund", journal);
        _transferReversals = new("stripe.transfer_reversal", journal);
        _disputes = new("stripe.dispute", journal);
        _accounts = new("stripe.account", journal);
        _events = new("stripe.event", journal);
        _accountLinks = new("stripe.account_link", journal);
        _idempotency = new("stripe.idempotency_key", journal);
        _undelivered = new("stripe.undelivered_event", journal);
        _webhookEndpoints = new("stripe.webhook_endpoint", journal);
        Load();
    }

    /// <summary>The stored objects of a journal (a restart on the same database); nothing without one.</summary>
    private void Load()
    {
        if (_journal is null)
        {
            return;
        }

        foreach (var map in new Action[]
        {
            _paymentIntents.Load, _charges.Load, _transfers.Load, _refunds.Load, _accounts.Load, _events.Load,
            _accountLinks.Load, _idempotency.Load, _undelivered.Load, _webhookEndpoints.Load, _transferReversals.Load, _disputes.Load,
        })
        {
            map();
        }

        // Held authorisations still expire 7 days after they were made, restart or not.
        foreach (var pi in _paymentIntents.Values.Where(pi => pi.Status == "requires_capture"))
        {
            ScheduleAuthorisationExpiry(pi.Id, pi.LatestCharge is { } charge && _charges.TryGetValue(charge, out var c) ? c.Created : pi.Created);
        }

        foreach (var transfer in _transfers.Values.Where(t => t.SourceTransaction is not null))
        {
            _transferredFromCharge[transfer.SourceTransaction!] = _transferredFromCharge.GetValueOrDefault(transfer.SourceTransaction!) + transfer.Amount - transfer.AmountReversed;
        }

        foreach (var eventId in _undelivered.Keys)
        {
            _deliveries.Writer.TryWrite(new WebhookDelivery(eventId, 1));
        }
    }

    /// <summary>Completes when every change made so far is durable (at once without a journal).</summary>
    internal Task WhenDurableAsync() => _journal is null ? Task.CompletedTask : _journal.WhenDurableAsync(_journal.LastSeq);

    public IReadOnlyList<SandboxPaymentIntent> PaymentIntents => Snapshot(_paymentIntents);
    public IReadOnlyList<SandboxCharge> Charges => Snapshot(_charges);
    public IReadOnlyList<SandboxTransfer> Transfers => Snapshot(_transfers);
    public IReadOnlyList<SandboxRefund> Refunds => Snapshot(_refunds);
    public IReadOnlyList<SandboxTransferReversal> TransferReversals => Snapshot(_transferReversals);
    public IReadOnlyList<SandboxDispute> Disputes => Snapshot(_disputes);
    public IReadOnlyList<SandboxAccount> Accounts => Snapshot(_accounts);

    /// <summary>All events, oldest first.</summary>
    public IReadOnlyList<SandboxEvent> Events => Snapshot(_events);

    /// <summary>Every request the Stripe API endpoints answered, in order.</summary>
    public IReadOnlyList<SandboxRequest> Requests
    {
        get { lock (_gate) { return [.. _requests]; } }
    }

    /// <summary>Every webhook delivery attempt, in order.</summary>
    public IReadOnlyList<SandboxWebhookAttempt> WebhookAttempts
    {
        get { lock (_gate) { return [.. _attempts]; } }
    }

    public SandboxPaymentIntent? GetPaymentIntent(string id) => Find(_paymentIntents, id);
    public SandboxCharge? GetCharge(string id) => Find(_charges, id);
    public SandboxTransfer? GetTransfer(string id) => Find(_transfers, id);
    public SandboxRefund? GetRefund(string id) => Find(_refunds, id);
    public SandboxAccount? GetAccount(string id) => Find(_accounts, id);
    public SandboxEvent? GetEvent(string id) => Find(_events, id);

    /// <summary>Events of one type, oldest first.</summary>
    public IReadOnlyList<SandboxEvent> EventsOfType(string type)
    {
        lock (_gate)
        {
            return [.. _events.Values.Where(e => e.Type == type)];
        }
    }

    /// <summary>Makes the next <paramref name="times"/> calls of <paramref name="operation"/> fail.</summary>
    public void InjectFault(string operation, SandboxFaultKind kind, int times = 1)
    {
        if (!SandboxOperations.All.Contains(operation))
        {
            throw new ArgumentException($"Unknown operation '{operation}'.", nameof(operation));
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(times);
        lock (_gate)
        {
            if (!_faults.TryGetValue(operation, out var list))
            {
                _faults[operation] = list = [];
            }

            list.Add(new Fault(kind, times));
        }
    }

    public void ClearFaults()
    {
        lock (_gate)
        {
            _faults.Clear();
        }
    }

    /// <summary>
    /// Completes onboarding: the requested capabilities active, payouts enabled unless <paramref name="payoutsEnabled"/>
    /// is false (Stripe can activate transfers while payouts still wait for a bank account); emits account.updated and
    /// capability.updated, as events of the connected account.
    /// </summary>
    public SandboxAccount? EnablePayouts(string accountId, bool payoutsEnabled = true)
    {
        lock (_gate)
        {
            if (!_accounts.TryGetValue(accountId, out var account))
            {
                return null;
            }

            var capabilities = new Dictionary<string, string>(account.Capabilities, StringComparer.Ordinal);
            foreach (var name in capabilities.Keys.ToList())
            {
                capabilities[name] = "active";
            }

            capabilities["transfers"] = "active";
            account = account with
            {
                ChargesEnabled = capabilities.ContainsKey("card_payments"),
                PayoutsEnabled = payoutsEnabled,
                DetailsSubmitted = true,
                Capabilities = capabilities,
            };
            _accounts[accountId] = account;
            AddEvent("account.updated", account.Id, StripeJson.Account(account), null, account.Id);
            AddEvent("capability.updated", "transfers", StripeJson.Capability(account, "transfers"), null, account.Id);
            return account;
        }
    }

    /// <summary>Queues another delivery of an existing event (even when automatic delivery is off).</summary>
    public bool ResendEvent(string eventId)
    {
        lock (_gate)
        {
            if (!_events.ContainsKey(eventId))
            {
                return false;
            }
        }

        _deliveries.Writer.TryWrite(new WebhookDelivery(eventId, 1));
        return true;
    }

    /// <summary>Forgets everything: objects, events, requests, idempotency keys, faults.</summary>
    public void Reset()
    {
        lock (_gate)
        {
            _paymentIntents.Clear();
            _charges.Clear();
            _transfers.Clear();
            _transferredFromCharge.Clear();
            _refunds.Clear();
            _transferReversals.Clear();
            _disputes.Clear();
            _accounts.Clear();
            _events.Clear();
            _accountLinks.Clear();
            _idempotency.Clear();
            _undelivered.Clear();
            _faults.Clear();
            _requests.Clear();
            _attempts.Clear();
            _webhookEndpoints.Clear();
            _authorisationExpiries.Clear();
            ResetStats();
        }
    }

    // ---- plumbing used by the endpoints and the delivery service ----

    internal ChannelReader<WebhookDelivery> Deliveries => _deliveries.Reader;

    internal void EnqueueDelivery(WebhookDelivery delivery) => _deliveries.Writer.TryWrite(delivery);

    internal void RecordAttempt(SandboxWebhookAttempt attempt)
    {
        lock (_gate)
        {
            _attempts.Add(attempt);
            if (attempt.Succeeded)
            {
                _undelivered.Remove(attempt.EventId);
            }
        }
    }

    internal void RecordRequest(SandboxRequest request)
    {
        lock (_gate)
        {
            _requests.Add(request);
        }
    }


    /// <summary>Runs one API request: idempotency, fault injection, the operation, and the request log.</summary>
    internal (StripeResponse Response, bool Replayed) Execute(
        string method, string path, string? operation, string? idempotencyKey, StripeForm form,
        Func<StripeForm, string?, StripeResponse> action)
    {
        lock (_gate)
        {
            var (response, replayed) = ExecuteLocked(method, path, operation, idempotencyKey, form, action);
            _requests.Add(new SandboxRequest(method, path, idempotencyKey, response.Status, operation, replayed));
            return (response, replayed);
        }
    }

    private (StripeResponse Response, bool Replayed) ExecuteLocked(
        string method, string path, string? operation, string? key, StripeForm form,
        Func<StripeForm, string?, StripeResponse> action)
    {
        var fingerprint = $"{method} {path}?{form.Fingerprint()}";
        if (key is not null && _idempotency.TryGetValue(key, out var stored))
        {
            if (stored.Fingerprint != fingerprint)
            {
                return (new StripeResponse(400, StripeJson.Error("idempotency_error", null,
                    "Keys for idempotent requests can only be used with the same parameters they were first used with. " +
                    $"Try using a key other than '{key}' if you meant to execute a different request.", null)), false);
            }

            // A lost answer is the network's doing, not Stripe's: a replayed answer is lost on its way back as well.
            return operation is not null && TakeFault(operation, SandboxFaultKind.LostResponse) is not null
                ? (ServerError(), true)
                : (new StripeResponse(stored.Status, (JsonObject)JsonNode.Parse(stored.Body)!), true);
        }

        var fault = operation is null ? null : TakeFault(operation);
        switch (fault)
        {
            case SandboxFaultKind.ServerError:
                // Stripe saves the result of a request that started executing, a 500 included, and replays it.
                var failed = ServerError();
                if (key is not null)
                {
                    _idempotency[key] = new StoredResponse(fingerprint, failed.Status, failed.Body.ToJsonString());
                }

                return (failed, false);
            case SandboxFaultKind.ServerErrorBeforeExecution:
                return (ServerError(), false);
            case SandboxFaultKind.Refused:
                var refused = Refusal(operation!);
                if (key is not null)
                {
                    _idempotency[key] = new StoredResponse(fingerprint, refused.Status, refused.Body.ToJsonString());
                }

                return (refused, false);
            case SandboxFaultKind.RateLimited:
                return (new StripeResponse(429, StripeJson.Error("rate_limit_error", "rate_limit",
                    "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.",
                    null)), false);
        }

        StripeResponse response;
        try
        {
            response = action(form, key);
        }
        catch (StripeApiException ex)
        {
            response = ex.ToResponse();
        }

        if (key is not null && response.Status < 500 && response.Status != 429)
        {
            _idempotency[key] = new StoredResponse(fingerprint, response.Status, response.Body.ToJsonString());
        }

        return fault == SandboxFaultKind.LostResponse ? (ServerError(), false) : (response, false);
    }

    private static StripeResponse Refusal(string operation)
    {
        var (code, message) = operation switch
        {
            SandboxOperations.PaymentIntentsCancel => ("payment_intent_unexpected_state", "This PaymentIntent could not be canceled (sandbox fault injection)."),
            SandboxOperations.RefundsCreate => ("charge_already_refunded", "This charge has already been refunded (sandbox fault injection)."),
            SandboxOperations.PaymentIntentsCapture => ("charge_expired_for_capture", "This charge has expired for capture (sandbox fault injection)."),
            SandboxOperations.TransferReversalsCreate => ("balance_insufficient", "The connected account's balance does not cover this reversal (sandbox fault injection)."),
            _ => ("resource_missing", "No such object (sandbox fault injection)."),
        };
        return new StripeResponse(400, StripeJson.Error("invalid_request_error", code, message, null));
    }

    private static StripeResponse ServerError() =>
        new(500, StripeJson.Error("api_error", null,
            "An unknown error occurred while processing your request (sandbox fault injection).", null));

    /// <summary>Takes the operation's next fault; with <paramref name="only"/>, only if it is of that kind.</summary>
    private SandboxFaultKind? TakeFault(string operation, SandboxFaultKind? only = null)
    {
        if (!_faults.TryGetValue(operation, out var list) || list.Count == 0 || (only is not null && list[0].Kind != only))
        {
            return null;
        }

        var fault = list[0];
        fault.Remaining--;
        if (fault.Remaining <= 0)
        {
            list.RemoveAt(0);
        }

        return fault.Kind;
    }

    // ---- payment intents (called under the lock) ----

    internal StripeResponse CreatePaymentIntent(StripeForm form, string? key)
    {
        var amount = form.PositiveAmount("amount");
        var currency = form.RequiredString("currency").ToLowerInvariant();
        RequireMinimumChargeAmount(amount, currency);
        var captureMethod = form.String("capture_method") ?? "automatic";
        if (captureMethod is not ("automatic" or "automatic_async" or "manual"))
        {
            throw new StripeApiException(400, "invalid_request_error", "parameter_invalid_enum",
                $"Invalid capture_method: must be one of automatic, automatic_async, or manual", "capture_method");
        }

        var paymentMethod = form.String("payment_method");
        var confirm = form.Bool("confirm");
        if (confirm && paymentMethod is null)
        {
            throw new StripeApiException(400, "invalid_request_error", "parameter_missing",
                "You cannot confirm this PaymentIntent because it's missing a payment method.", "payment_method");
        }

        var id = NewId("pi");
        var pi = new SandboxPaymentIntent
        {
            Id = id,
            Amount = amount,
            Currency = currency,
            Status = paymentMethod is null ? "requires_payment_method" : "requires_confirmation",
            CaptureMethod = captureMethod,
            ClientSecret = $"{id}_secret_{RandomToken(12)}",
            PaymentMethod = paymentMethod,
            TransferGroup = form.String("transfer_group"),
            Description = form.String("description"),
            Metadata = form.Hash("metadata"),
            Created = Now(),
        };
        _paymentIntents[id] = pi;
        return confirm ? Confirm(pi, paymentMethod!, key, form) : PaymentIntentResponse(pi, form);
    }

    internal StripeResponse ListPaymentIntents(StripeForm form)
    {
        var limit = form.Limit();
        var createdFrom = form.Long("created[gte]");
        var matching = _paymentIntents.Values
            .Where(p => createdFrom is null || p.Created >= createdFrom)
            .Reverse()
            .ToList();
        matching = Page(matching, p => p.Id, form);
        return StripeResponse.Ok(StripeJson.List("/v1/payment_intents",
            matching.Take(limit).Select(p => StripeJson.PaymentIntent(p)), matching.Count > limit));
    }

    internal StripeResponse RetrievePaymentIntent(string id, StripeForm form) =>
        PaymentIntentResponse(RequirePaymentIntent(id), form);

    /// <summary>The PaymentIntent JSON, with <c>latest_charge</c> expanded when asked (<c>expand[]=latest_charge</c>).</summary>
    private StripeResponse PaymentIntentResponse(SandboxPaymentIntent pi, StripeForm form)
    {
        var json = StripeJson.PaymentIntent(pi);
        if (form.Expands("latest_charge") && pi.LatestCharge is { } chargeId && _charges.TryGetValue(chargeId, out var charge))
        {
            json["latest_charge"] = StripeJson.Charge(charge);
        }

        return StripeResponse.Ok(json);
    }

    internal StripeResponse ConfirmPaymentIntent(string id, StripeForm form, string? key)
    {
        var pi = RequirePaymentIntent(id);
        if (pi.Status is not ("requires_payment_method" or "requires_confirmation"))
        {
            throw UnexpectedState(pi, "confirmed", "requires_payment_method, requires_confirmation");
        }

        var paymentMethod = form.String("payment_method") ?? pi.PaymentMethod
            ?? throw new StripeApiException(400, "invalid_request_error", "parameter_missing",
                "You cannot confirm this PaymentIntent because it's missing a payment method.", "payment_method");
        return Confirm(pi, paymentMethod, key, form);
    }

    private StripeResponse Confirm(SandboxPaymentIntent pi, string paymentMethod, string? key, StripeForm form)
    {
        if (!paymentMethod.StartsWith("pm_", StringComparison.Ordinal))
        {
            throw StripeApiException.Missing("PaymentMethod", paymentMethod, "payment_method");
        }

        if (Decline(paymentMethod) is { } decline)
        {
            pi = pi with
            {
                Status = "requires_payment_method",
                PaymentMethod = null,
                LastPaymentError = new SandboxPaymentError("card_error", decline.Code, decline.DeclineCode,
                    decline.Message, paymentMethod),
            };
            _paymentIntents[pi.Id] = pi;
            var json = StripeJson.PaymentIntent(pi);
            AddEvent("payment_intent.payment_failed", pi.Id, json, key);
            return new StripeResponse(402, StripeJson.Error("card_error", decline.Code, decline.Message, null,
                decline.DeclineCode, StripeJson.PaymentIntent(pi)));
        }

        var manual = pi.CaptureMethod == "manual";
        var charge = new SandboxCharge
        {
            Id = NewId("ch"),
            Amount = pi.Amount,
            AmountCaptured = manual ? 0 : pi.Amount,
            Captured = !manual,
            Currency = pi.Currency,
            PaymentIntent = pi.Id,
            PaymentMethod = paymentMethod,
            TransferGroup = pi.TransferGroup,
            Created = Now(),
        };
        _charges[charge.Id] = charge;
        pi = pi with
        {
            Status = manual ? "requires_capture" : "succeeded",
            AmountCapturable = manual ? pi.Amount : 0,
            AmountReceived = manual ? 0 : pi.Amount,
            LatestCharge = charge.Id,
            PaymentMethod = paymentMethod,
            LastPaymentError = null,
        };
        _paymentIntents[pi.Id] = pi;
        if (manual)
        {
            ScheduleAuthorisationExpiry(pi.Id, charge.Created);
        }

        AddEvent(manual ? "payment_intent.amount_capturable_updated" : "payment_intent.succeeded", pi.Id,
            StripeJson.PaymentIntent(pi), key);
        return PaymentIntentResponse(pi, form);
    }

    private static (string Code, string? DeclineCode, string Message)? Decline(string paymentMethod) => paymentMethod switch
    {
        "pm_card_chargeDeclined" or "pm_card_visa_chargeDeclined" =>
            ("card_declined", "generic_decline", "Your card was declined."),
        "pm_card_chargeDeclinedInsufficientFunds" =>
            ("card_declined", "insufficient_funds", "Your card has insufficient funds."),
        "pm_card_chargeDeclinedFraudulent" =>
            ("card_declined", "fraudulent", "Your card was declined."),
        "pm_card_chargeDeclinedExpiredCard" => ("expired_card", null, "Your card has expired."),
        "pm_card_chargeDeclinedIncorrectCvc" => ("incorrect_cvc", null, "Your card's security code is incorrect."),
        "pm_card_chargeDeclinedProcessingError" =>
            ("processing_error", null, "An error occurred while processing your card. Try again in a little bit."),
        _ => null,
    };

    internal StripeResponse CapturePaymentIntent(string id, StripeForm form, string? key)
    {
        var pi = RequirePaymentIntent(id);
        if (pi.Status != "requires_capture")
        {
            throw UnexpectedState(pi, "captured", "requires_capture");
        }

        var amount = form.Long("amount_to_capture") ?? pi.AmountCapturable;
        if (amount <= 0 || amount > pi.AmountCapturable)
        {
            throw new StripeApiException(400, "invalid_request_error", "amount_too_large",
                $"The amount to capture must be between 1 and the capturable amount ({pi.AmountCapturable}).",
                "amount_to_capture");
        }

        if (pi.LatestCharge is { } chargeId && _charges.TryGetValue(chargeId, out var charge))
        {
            _charges[chargeId] = charge with { Captured = true, AmountCaptured = amount };
        }

        pi = pi with { Status = "succeeded", AmountCapturable = 0, AmountReceived = amount };
        _paymentIntents[pi.Id] = pi;
        AddEvent("payment_intent.succeeded", pi.Id, StripeJson.PaymentIntent(pi), key);
        return PaymentIntentResponse(pi, form);
    }

    internal StripeResponse CancelPaymentIntent(string id, StripeForm form, string? key)
    {
        var pi = RequirePaymentIntent(id);
        var reason = form.String("cancellation_reason");
        if (reason is not null && !CancellationReasons.Contains(reason))
        {
            throw new StripeApiException(400, "invalid_request_error", "parameter_invalid_enum",
                "Invalid cancellation_reason: must be one of " + string.Join(", ", CancellationReasons),
                "cancellation_reason");
        }

        if (!CancellableStatuses.Contains(pi.Status))
        {
            throw UnexpectedState(pi, "canceled", string.Join(", ", CancellableStatuses));
        }

        if (pi.LatestCharge is { } chargeId && _charges.TryGetValue(chargeId, out var charge) && !charge.Captured)
        {
            _charges[chargeId] = charge with { AmountRefunded = charge.Amount, Refunded = true };
        }

        pi = pi with { Status = "canceled", AmountCapturable = 0, CancellationReason = reason };
        _paymentIntents[pi.Id] = pi;
        AddEvent("payment_intent.canceled", pi.Id, StripeJson.PaymentIntent(pi), key);
        return PaymentIntentResponse(pi, form);
    }

    private SandboxPaymentIntent RequirePaymentIntent(string id) =>
        _paymentIntents.TryGetValue(id, out var pi) ? pi : throw StripeApiException.Missing("payment_intent", id, "intent");

    private static StripeApiException UnexpectedState(SandboxPaymentIntent pi, string verb, string allowed) =>
        new(400, "invalid_request_error", "payment_intent_unexpected_state",
            $"This PaymentIntent could not be {verb} because it has a status of {pi.Status}. " +
            $"Only a PaymentIntent with one of the following statuses may be {verb}: {allowed}.");

    // ---- charges ----

    internal StripeResponse RetrieveCharge(string id) =>
        _charges.TryGetValue(id, out var charge)
            ? StripeResponse.Ok(StripeJson.Charge(charge))
            : throw StripeApiException.Missing("charge", id, "id");

    // ---- transfers ----

    internal StripeResponse CreateTransfer(StripeForm form, string? key)
    {
        var amount = form.PositiveAmount("amount");
        var currency = form.RequiredString("currency").ToLowerInvariant();
        var destination = form.RequiredString("destination");
        if (!_accounts.TryGetValue(destination, out var account))
        {
            throw new StripeApiException(400, "invalid_request_error", "resource_missing",
                $"No such destination: '{destination}'", "destination");
        }

        if (account.Capabilities.GetValueOrDefault("transfers") != "active")
        {
            throw new StripeApiException(400, "invalid_request_error", "insufficient_capabilities_for_transfer",
                "Your destination account needs to have at least one of the following capabilities enabled: " +
                "transfers, crypto_transfers, legacy_payments", "destination");
        }

        var source = form.String("source_transaction");
        if (source is not null)
        {
            if (!_charges.TryGetValue(source, out var charge))
            {
                throw new StripeApiException(400, "invalid_request_error", "resource_missing",
                    $"No such charge: '{source}'", "source_transaction");
            }

            if (!charge.Captured)
            {
                throw new StripeApiException(400, "invalid_request_error", "charge_not_captured",
                    $"The source_transaction charge '{source}' has not been captured.", "source_transaction");
            }

            if (charge.Currency != currency)
            {
                throw new StripeApiException(400, "invalid_request_error", "parameter_invalid",
                    $"The currency of the transfer ({currency}) must match the source_transaction's ({charge.Currency}).",
                    "currency");
            }

            var alreadyTransferred = _transferredFromCharge.GetValueOrDefault(source);
            var available = charge.AmountCaptured - charge.AmountRefunded - alreadyTransferred;
            if (amount > available)
            {
                throw new StripeApiException(400, "invalid_request_error", "amount_too_large",
                    $"The transfer amount ({amount}) exceeds the amount available from source_transaction " +
                    $"'{source}' ({available}).", "amount");
            }
        }

        var transfer = new SandboxTransfer
        {
            Id = NewId("tr"),
            Amount = amount,
            Currency = currency,
            Destination = destination,
            SourceTransaction = source,
            TransferGroup = form.String("transfer_group"),
            Description = form.String("description"),
            Metadata = form.Hash("metadata"),
            Created = Now(),
        };
        _transfers[transfer.Id] = transfer;
        if (source is not null)
        {
            _transferredFromCharge[source] = _transferredFromCharge.GetValueOrDefault(source) + amount;
        }
        AddEvent("transfer.created", transfer.Id, StripeJson.Transfer(transfer), key);
        return StripeResponse.Ok(StripeJson.Transfer(transfer));
    }

    internal StripeResponse RetrieveTransfer(string id) =>
        _transfers.TryGetValue(id, out var transfer)
            ? StripeResponse.Ok(StripeJson.Transfer(transfer))
            : throw StripeApiException.Missing("transfer", id, "id");

    internal StripeResponse ListTransfers(StripeForm form)
    {
        var limit = form.Limit();
        var group = form.String("transfer_group");
        var destination = form.String("destination");
        var matching = _transfers.Values
            .Where(t => group is null || t.TransferGroup == group)
            .Where(t => destination is null || t.Destination == destination)
            .Reverse()
            .ToList();
        matching = Page(matching, t => t.Id, form);
        return StripeResponse.Ok(StripeJson.List("/v1/transfers",
            matching.Take(limit).Select(StripeJson.Transfer), matching.Count > limit));
    }

    // ---- refunds ----

    internal StripeResponse CreateRefund(StripeForm form, string? key)
    {
        var piId = form.String("payment_intent");
        var chargeId = form.String("charge");
        if (piId is null && chargeId is null)
        {
            throw StripeApiException.MissingParam("payment_intent");
        }

        if (piId is not null)
        {
            if (!_paymentIntents.TryGetValue(piId, out var pi))
            {
                throw new StripeApiException(400, "invalid_request_error", "resource_missing",
                    $"No such payment_intent: '{piId}'", "payment_intent");
            }

            chargeId ??= pi.LatestCharge ?? throw new StripeApiException(400, "invalid_request_error",
                "payment_intent_unexpected_state",
                $"This PaymentIntent ({piId}) does not have a successful charge to refund.", "payment_intent");
        }

        if (!_charges.TryGetValue(chargeId!, out var charge))
        {
            throw new StripeApiException(400, "invalid_request_error", "resource_missing",
                $"No such charge: '{chargeId}'", "charge");
        }

        if (!charge.Captured)
        {
            throw new StripeApiException(400, "invalid_request_error", "charge_not_captured",
                $"Charge {charge.Id} has not been captured; cancel its PaymentIntent instead.", "charge");
        }

        if (_disputes.Values.Any(d => d.Charge == charge.Id))
        {
            throw new StripeApiException(400, "invalid_request_error", "charge_disputed",
                $"Charge {charge.Id} has been charged back; it cannot be refunded.", "charge");
        }

        var remaining = charge.AmountCaptured - charge.AmountRefunded;
        if (remaining <= 0)
        {
            throw new StripeApiException(400, "invalid_request_error", "charge_already_refunded",
                $"Charge {charge.Id} has already been refunded.", "charge");
        }

        var amount = form.Long("amount") ?? remaining;
        if (amount <= 0 || amount > remaining)
        {
            throw new StripeApiException(400, "invalid_request_error", "amount_too_large",
                $"Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining}).", "amount");
        }

        charge = charge with
        {
            AmountRefunded = charge.AmountRefunded + amount,
            Refunded = charge.AmountRefunded + amount >= charge.AmountCaptured,
        };
        _charges[charge.Id] = charge;
        var refund = new SandboxRefund
        {
            Id = NewId("re"),
            Amount = amount,
            Currency = charge.Currency,
            Charge = charge.Id,
            PaymentIntent = charge.PaymentIntent,
            Reason = form.String("reason"),
            Metadata = form.Hash("metadata"),
            Created = Now(),
        };
        _refunds[refund.Id] = refund;
        AddEvent("charge.refunded", charge.Id, StripeJson.Charge(charge), key);
        return StripeResponse.Ok(StripeJson.Refund(refund));
    }

    internal StripeResponse ListRefunds(StripeForm form)
    {
        var limit = form.Limit();
        var paymentIntent = form.String("payment_intent");
        var matching = _refunds.Values
            .Where(r => paymentIntent is null || r.PaymentIntent == paymentIntent)
            .Reverse()
            .ToList();
        matching = Page(matching, r => r.Id, form);
        return StripeResponse.Ok(StripeJson.List("/v1/refunds", matching.Take(limit).Select(StripeJson.Refund), matching.Count > limit));
    }

    // ---- accounts ----

    internal StripeResponse CreateAccount(StripeForm form, string? key)
    {
        _ = key;
        var type = form.String("type") ?? "express";
        if (type is not ("express" or "standard" or "custom"))
        {
            throw new StripeApiException(400, "invalid_request_error", "parameter_invalid_enum",
                "Invalid type: must be one of custom, express, or standard", "type");
        }

        // Only the capabilities asked for, as Stripe does for an Express account.
        var capabilities = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, requested) in form.NestedField("capabilities", "requested"))
        {
            if (requested == "true")
            {
                capabilities[name] = "inactive";
            }
        }

        var country = (form.String("country") ?? _options.PlatformCountry).ToUpperInvariant();
        var agreement = RequireServiceAgreement(form, country, capabilities);
        var account = new SandboxAccount
        {
            Id = NewId("acct"),
            Type = type,
            ServiceAgreement = agreement,
            Country = country,
            Email = form.String("email"),
            BusinessType = form.String("business_type"),
            Capabilities = capabilities,
            Metadata = form.Hash("metadata"),
            Created = Now(),
        };
        _accounts[account.Id] = account;
        return StripeResponse.Ok(StripeJson.Account(account));
    }

    internal StripeResponse RetrieveAccount(string id) =>
        _accounts.TryGetValue(id, out var account)
            ? StripeResponse.Ok(StripeJson.Account(account))
            : throw StripeApiException.Missing("account", id, "account");


    // ---- events ----

    internal StripeResponse RetrieveEvent(string id) =>
        _events.TryGetValue(id, out var e)
            ? StripeResponse.Ok((JsonObject)JsonNode.Parse(e.Json)!)
            : throw StripeApiException.Missing("event", id, "id");

    internal StripeResponse ListEvents(StripeForm form)
    {
        var limit = form.Limit();
        var type = form.String("type");
        var createdFrom = form.Long("created[gte]");
        var createdTo = form.Long("created[lt]");
        var matching = _events.Values
            .Where(e => type is null || TypeMatches(type, e.Type))
            .Where(e => (createdFrom is null || e.Created >= createdFrom) && (createdTo is null || e.Created < createdTo))
            .Reverse()
            .ToList();
        matching = Page(matching, e => e.Id, form);
        return StripeResponse.Ok(StripeJson.List("/v1/events",
            matching.Take(limit).Select(e => (JsonObject)JsonNode.Parse(e.Json)!), matching.Count > limit));
    }

    /// <summary>Applies <c>starting_after</c> / <c>ending_before</c> to a newest-first list.</summary>
    private static List<T> Page<T>(List<T> newestFirst, Func<T, string> id, StripeForm form)
    {
        if (form.String("starting_after") is { } after)
        {
            var index = newestFirst.FindIndex(item => id(item) == after);
            return index < 0 ? [] : newestFirst.Skip(index + 1).ToList();
        }

        if (form.String("ending_before") is { } before)
        {
            var index = newestFirst.FindIndex(item => id(item) == before);
            return index < 0 ? [] : newestFirst.Take(index).ToList();
        }

        return newestFirst;
    }

    private static bool TypeMatches(string pattern, string type) =>
        pattern.EndsWith(".*", StringComparison.Ordinal)
            ? type.StartsWith(pattern[..^1], StringComparison.Ordinal)
            : pattern == type;

    private void AddEvent(string type, string objectId, JsonObject dataObject, string? idempotencyKey, string? account = null)
    {
        var id = NewId("evt");
        var created = Now();
        var json = new JsonObject
        {
            ["id"] = id,
            ["object"] = "event",
            ["api_version"] = _options.ApiVersion,
            ["created"] = created,
            ["livemode"] = false,
            ["pending_webhooks"] = 1,
            ["type"] = type,
            ["data"] = new JsonObject { ["object"] = dataObject },
            ["request"] = new JsonObject { ["id"] = null, ["idempotency_key"] = idempotencyKey },
        };
        if (account is not null)
        {
            // An event of a connected account names it at the top level (Connect webhooks).
            json["account"] = account;
        }

        _events[id] = new SandboxEvent
        {
            Id = id,
            Type = type,
            ObjectId = objectId,
            Account = account,
            IdempotencyKey = idempotencyKey,
            Created = created,
            Json = json.ToJsonString(),
        };
        if (_options.DeliverWebhooks)
        {
            _undelivered[id] = id;
            _deliveries.Writer.TryWrite(new WebhookDelivery(id, 1));
        }
    }

    // ---- helpers ----

    private long Now() => _time.GetUtcNow().ToUnixTimeSeconds();

    internal static string NewId(string prefix) => $"{prefix}_{RandomToken(24)}";

    private static string RandomToken(int length)
    {
        const string alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        return RandomNumberGenerator.GetString(alphabet, length);
    }

    private IReadOnlyList<T> Snapshot<T>(PersistentMap<T> map)
        where T : notnull
    {
        lock (_gate)
        {
            return [.. map.Values];
        }
    }

    private T? Find<T>(PersistentMap<T> map, string id)
        where T : class
    {
        lock (_gate)
        {
            return map.GetValueOrDefault(id);
        }
    }

    private sealed record StoredResponse(string Fingerprint, int Status, string Body);

    private sealed class Fault(SandboxFaultKind kind, int remaining)
    {
        public SandboxFaultKind Kind { get; } = kind;
        public int Remaining { get; set; } = remaining;
    }
}

internal sealed record WebhookDelivery(string EventId, int Attempt);

