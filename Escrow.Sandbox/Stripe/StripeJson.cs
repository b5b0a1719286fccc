using System.Text.Json.Nodes;

namespace Escrow.Sandbox;

/// <summary>Stripe's JSON shapes (snake_case, <c>object</c> discriminator).</summary>
internal static class StripeJson
{
    public static JsonObject Error(string type, string? code, string message, string? param,
        string? declineCode = null, JsonObject? paymentIntent = null)
    {
        var error = new JsonObject { ["type"] = type, ["message"] = message };
        if (code is not null)
        {
            error["code"] = code;
            error["doc_url"] = "https://stripe.com/docs/error-codes/" + code.Replace('_', '-');
        }

        if (declineCode is not null)
        {
            error["decline_code"] = declineCode;
        }

        if (param is not null)
        {
            error["param"] = param;
        }

        if (paymentIntent is not null)
        {
            error["payment_intent"] = paymentIntent;
        }

        return new JsonObject { ["error"] = error };
    }

    public static JsonObject Map(IReadOnlyDictionary<string, string> values)
    {
        var map = new JsonObject();
        foreach (var (key, value) in values.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            map[key] = value;
        }

        return map;
    }

    public static JsonObject PaymentIntent(SandboxPaymentIntent pi) => new()
    {
        ["id"] = pi.Id,
        ["object"] = "payment_intent",
        ["amount"] = pi.Amount,
        ["amount_capturable"] = pi.AmountCapturable,
        ["amount_received"] = pi.AmountReceived,
        ["currency"] = pi.Currency,
        ["status"] = pi.Status,
        ["capture_method"] = pi.CaptureMethod,
        ["client_secret"] = pi.ClientSecret,
        ["latest_charge"] = pi.LatestCharge,
        ["payment_method"] = pi.PaymentMethod,
        ["payment_method_types"] = new JsonArray("card"),
        ["transfer_group"] = pi.TransferGroup,
        ["description"] = pi.Description,
        ["metadata"] = Map(pi.Metadata),
        ["cancellation_reason"] = pi.CancellationReason,
        ["created"] = pi.Created,
        ["livemode"] = false,
        ["last_payment_error"] = pi.LastPaymentError is { } e
            ? new JsonObject
            {
                ["type"] = e.Type,
                ["code"] = e.Code,
                ["decline_code"] = e.DeclineCode,
                ["message"] = e.Message,
                ["payment_method"] = e.PaymentMethod is null ? null : new JsonObject
                {
                    ["id"] = e.PaymentMethod,
                    ["object"] = "payment_method",
                    ["type"] = "card",
                },
            }
            : null,
    };

    public static JsonObject Charge(SandboxCharge charge) => new()
    {
        ["id"] = charge.Id,
        ["object"] = "charge",
        ["amount"] = charge.Amount,
        ["amount_captured"] = charge.AmountCaptured,
        ["amount_refunded"] = charge.AmountRefunded,
        ["captured"] = charge.Captured,
        ["refunded"] = charge.Refunded,
        ["currency"] = charge.Currency,
        ["payment_intent"] = charge.PaymentIntent,
        ["payment_method"] = charge.PaymentMethod,
        ["paid"] = true,
        ["status"] = charge.Status,
        ["transfer_group"] = charge.TransferGroup,
        ["created"] = charge.Created,
        ["livemode"] = false,
    };

    public static JsonObject Transfer(SandboxTransfer transfer) => new()
    {
        ["id"] = transfer.Id,
        ["object"] = "transfer",
        ["amount"] = transfer.Amount,
        ["currency"] = transfer.Currency,
        ["destination"] = transfer.Destination,
        ["source_transaction"] = transfer.SourceTransaction,
        ["transfer_group"] = transfer.TransferGroup,
        ["description"] = transfer.Description,
        ["metadata"] = Map(transfer.Metadata),
        ["reversed"] = transfer.Reversed,
        ["amount_reversed"] = transfer.AmountReversed,
        ["created"] = transfer.Created,
        ["livemode"] = false,
    };

    public static JsonObject Dispute(SandboxDispute dispute) => new()
    {
        ["id"] = dispute.Id,
        ["object"] = "dispute",
        ["amount"] = dispute.Amount,
        ["currency"] = dispute.Currency,
        ["charge"] = dispute.Charge,
        ["payment_intent"] = dispute.PaymentIntent,
        ["status"] = dispute.Status,
        ["reason"] = dispute.Reason,
        ["is_charge_refundable"] = false,
        ["created"] = dispute.Created,
        ["livemode"] = false,
    };

    public static JsonObject TransferReversal(SandboxTransferReversal reversal) => new()
    {
        ["id"] = reversal.Id,
        ["object"] = "transfer_reversal",
        ["amount"] = reversal.Amount,
        ["currency"] = reversal.Currency,
        ["transfer"] = reversal.Transfer,
        ["metadata"] = Map(reversal.Metadata),
        ["created"] = reversal.Created,
    };

    public static JsonObject Refund(SandboxRefund refund) => new()
    {
        ["id"] = refund.Id,
        ["object"] = "refund",
        ["amount"] = refund.Amount,
        ["currency"] = refund.Currency,
        ["charge"] = refund.Charge,
        ["payment_intent"] = refund.PaymentIntent,
        ["reason"] = refund.Reason,
        ["metadata"] = Map(refund.Metadata),
        ["status"] = refund.Status,
        ["created"] = refund.Created,
    };

    public static JsonObject Account(SandboxAccount account) => new()
    {
        ["id"] = account.Id,
        ["object"] = "account",
        ["type"] = account.Type,
        ["country"] = account.Country,
        ["email"] = account.Email,
        ["business_type"] = account.BusinessType,
        ["charges_enabled"] = account.ChargesEnabled,
        ["payouts_enabled"] = account.PayoutsEnabled,
        ["details_submitted"] = account.DetailsSubmitted,
        ["capabilities"] = Map(account.Capabilities),
        ["metadata"] = Map(account.Metadata),
        ["tos_acceptance"] = new JsonObject { ["service_agreement"] = account.ServiceAgreement },
        ["created"] = account.Created,
    };

    public static JsonObject Capability(SandboxAccount account, string name) => new()
    {
        ["id"] = name,
        ["object"] = "capability",
        ["account"] = account.Id,
        ["requested"] = true,
        ["status"] = account.Capabilities.GetValueOrDefault(name, "inactive"),
    };

    public static JsonObject WebhookEndpoint(SandboxWebhookEndpoint endpoint)
    {
        var events = new JsonArray();
        foreach (var e in endpoint.EnabledEvents)
        {
            events.Add(e);
        }

        return new JsonObject
        {
            ["id"] = endpoint.Id,
            ["object"] = "webhook_endpoint",
            ["url"] = endpoint.Url,
            ["api_version"] = endpoint.ApiVersion,
            ["application"] = null,
            ["enabled_events"] = events,
            ["status"] = endpoint.Status,
            ["livemode"] = false,
            ["created"] = endpoint.Created,
        };
    }

    public static JsonObject List(string url, IEnumerable<JsonObject> items, bool hasMore)
    {
        var data = new JsonArray();
        foreach (var item in items)
        {
            data.Add(item);
        }

        return new JsonObject
        {
            ["object"] = "list",
            ["data"] = data,
            ["has_more"] = hasMore,
            ["url"] = url,
        };
    }
}
