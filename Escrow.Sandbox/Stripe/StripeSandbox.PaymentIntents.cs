namespace Escrow.Sandbox;

// PaymentIntents and their charges (called under the lock).
public sealed partial class StripeSandbox
{
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
            matching.Take(limit).Select(StripeJson.Of), matching.Count > limit));
    }

    internal StripeResponse RetrievePaymentIntent(string id, StripeForm form) =>
        PaymentIntentResponse(RequirePaymentIntent(id), form);

    /// <summary>The PaymentIntent JSON, with <c>latest_charge</c> expanded when asked (<c>expand[]=latest_charge</c>).</summary>
    private StripeResponse PaymentIntentResponse(SandboxPaymentIntent pi, StripeForm form)
    {
        var json = StripeJson.Of(pi);
        if (form.Expands("latest_charge") && pi.LatestCharge is { } chargeId && _charges.TryGetValue(chargeId, out var charge))
        {
            json["latest_charge"] = StripeJson.Of(charge);
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
            var json = StripeJson.Of(pi);
            AddEvent("payment_intent.payment_failed", pi.Id, json, key);
            return new StripeResponse(402, StripeJson.Error("card_error", decline.Code, decline.Message, null,
                decline.DeclineCode, StripeJson.Of(pi)));
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
            StripeJson.Of(pi), key);
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
        AddEvent("payment_intent.succeeded", pi.Id, StripeJson.Of(pi), key);
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
        AddEvent("payment_intent.canceled", pi.Id, StripeJson.Of(pi), key);
        return PaymentIntentResponse(pi, form);
    }

    private SandboxPaymentIntent RequirePaymentIntent(string id) =>
        _paymentIntents.TryGetValue(id, out var pi) ? pi : throw StripeApiException.Missing("payment_intent", id, "intent");

    private static StripeApiException UnexpectedState(SandboxPaymentIntent pi, string verb, string allowed) =>
        new(400, "invalid_request_error", "payment_intent_unexpected_state",
            $"This PaymentIntent could not be {verb} because it has a status of {pi.Status}. " +
            $"Only a PaymentIntent with one of the following statuses may be {verb}: {allowed}.");

    internal StripeResponse RetrieveCharge(string id) =>
        _charges.TryGetValue(id, out var charge)
            ? StripeResponse.Ok(StripeJson.Of(charge))
            : throw StripeApiException.Missing("charge", id, "id");
}
