namespace Escrow.Sandbox;

// Transfers to connected accounts and refunds of charges (called under the lock).
public sealed partial class StripeSandbox
{
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
        AddEvent("transfer.created", transfer.Id, StripeJson.Of(transfer), key);
        return StripeResponse.Ok(StripeJson.Of(transfer));
    }

    internal StripeResponse RetrieveTransfer(string id) =>
        _transfers.TryGetValue(id, out var transfer)
            ? StripeResponse.Ok(StripeJson.Of(transfer))
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
            matching.Take(limit).Select(StripeJson.Of), matching.Count > limit));
    }

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
        AddEvent("charge.refunded", charge.Id, StripeJson.Of(charge), key);
        return StripeResponse.Ok(StripeJson.Of(refund));
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
        return StripeResponse.Ok(StripeJson.List("/v1/refunds", matching.Take(limit).Select(StripeJson.Of), matching.Count > limit));
    }
}
