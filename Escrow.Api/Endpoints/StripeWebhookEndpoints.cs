using System.Buffers;
using Escrow.Grains.Domain;
using Escrow.Grains.Payments;
using Stripe;

namespace Escrow.Api.Endpoints;

/// <summary>
/// Stripe's webhook: authenticate the raw body, read its envelope, route the event to the grain that owns it (Stripe.net's
/// typed parse only for the types acted on), and mark it processed only after that work succeeded, so a failed delivery
/// is processed again on Stripe's retry.
/// </summary>
public static partial class StripeWebhookEndpoints
{
    public const string Provider = WebhookProviders.Stripe;

    public static void MapStripeWebhook(this IEndpointRouteBuilder app) =>
        app.MapWebhook("/webhooks/stripe", HandleAsync, ApiAuth.StripeSignature,
            new StripeEventBody("evt_1QbJ2n", "event", "payment_intent.amount_capturable_updated",
                new StripeEventData(JsonDocument.Parse("""{"id":"pi_3QbJ2m","object":"payment_intent","status":"requires_capture"}""").RootElement), "2025-03-31.basil"),
            "receiveStripeEvent", "Receive a Stripe event",
            "Stripe's platform and Connect webhooks. The raw body is checked against `Stripe-Signature` first, then the event is de-duplicated by id "
            + "and routed to its escrow or recipient. Unknown event types are acknowledged. A 5xx makes Stripe retry.");

    private static async Task<IResult> HandleAsync(HttpRequest request, IOptions<StripeOptions> options, IEscrowStore store, IGrainFactory grains, IPaymentGateway payments, TimeProvider clock, ILoggerFactory loggers)
    {
        var log = loggers.CreateLogger("Escrow.Webhooks.Stripe");
        if (request.ContentLength > JsonBody.BodyBytesMax)
        {
            return Problems.Make(StatusCodes.Status413PayloadTooLarge, "Body too large", "Stripe events are far smaller than this.");
        }
        var signature = request.Headers["Stripe-Signature"].ToString();
        if (string.IsNullOrWhiteSpace(signature))
        {
            // EventUtility throws a NullReferenceException on a missing header: refuse it here as a bad request.
            LogRejected(log, "no Stripe-Signature header");
            return Problems.BadRequest("The Stripe-Signature header is missing, wrong or too old, or the event's API version is not supported.");
        }
        string json;
        using (var reader = new StreamReader(request.Body))
        {
            json = await reader.ReadToEndAsync(request.HttpContext.RequestAborted);
        }
        if (SignedBy(json, signature, options.Value, clock, out var refusal) is not { } endpoint)
        {
            LogRejected(log, refusal);
            return Problems.BadRequest("The Stripe-Signature header is missing, wrong or too old, or the event's API version is not supported.");
        }
        if (ReadEnvelope(json, out refusal) is not { } envelope)
        {
            // A signed body that is not an event (no id, type or data.object, an unsupported API version) is refused,
            // not recorded (fuzzer: no data → 500).
            LogRejected(log, refusal);
            return Problems.BadRequest("The Stripe-Signature header is missing, wrong or too old, or the event's API version is not supported.");
        }
        var (eventId, type, connectedAccount) = envelope;
        if (connectedAccount is not null && endpoint != SigningEndpoint.Connect)
        {
            // Stripe sends a connected account's events only to the Connect endpoint: one signed with another secret is forged.
            LogRejected(log, $"event {eventId} of connected account {connectedAccount} not signed with the Connect secret");
            return Problems.BadRequest("An event of a connected account must be signed with the Connect endpoint's secret (Stripe:ConnectWebhookSecret).");
        }
        EventRoute? route = null;
        if (RouterFor(type, connectedAccount) is { } router)
        {
            // Stripe.net's typed parse only for the types acted on; it throws JSON/format errors on mistyped fields.
            Event stripeEvent;
            try
            {
                stripeEvent = EventUtility.ParseEvent(json);
            }
            catch (Exception e) when (IsNotAStripeEvent(e))
            {
                LogRejected(log, e.Message);
                return Problems.BadRequest("The Stripe-Signature header is missing, wrong or too old, or the event's API version is not supported.");
            }
            route = router(stripeEvent, new RouteServices(grains, store, payments, clock));
        }
        var receivedAt = clock.GetUtcNow();
        string outcome;
        if (route is null)
        {
            // A type we do not act on (e.g. payment_intent.succeeded after our own capture): nothing to apply, nothing
            // to deduplicate, so no inbox look-up either.
            outcome = "acknowledged";
        }
        else if (!route.CheckedByEscrow && await store.IsWebhookProcessedAsync(Provider, eventId))
        {
            return Duplicate(type);
        }
        else
        {
            outcome = await route.Work();
            if (outcome == "duplicate")
            {
                return Duplicate(type);
            }
        }
        // Recorded once the work succeeded (a failure answers 5xx and Stripe delivers again). An event that changed
        // nothing (our own calls echoed back, duplicates, unknown types) needs no record: processing it again also
        // changes nothing, so it costs no commit.
        if (outcome is "applied" or "alerted")
        {
            await store.RecordProcessedWebhookAsync(Provider, eventId, type, receivedAt, outcome, clock.GetUtcNow());
        }
        LogProcessed(log, eventId, type, outcome);
        EscrowTelemetry.WebhookEvents.Add(1, new("provider", Provider), new("type", type), new("outcome", outcome.Split(':')[0]));
        return TypedResults.Ok(new { received = true, outcome });
    }

    /// <summary>
    /// What Stripe.net throws for a body that is not a Stripe event: a bad signature or API version (StripeException),
    /// a bad timestamp (FormatException, OverflowException: was a 500), JSON and format errors on mistyped fields.
    /// </summary>
    private static bool IsNotAStripeEvent(Exception e) =>
        e is StripeException or ArgumentException or Newtonsoft.Json.JsonException or System.Text.Json.JsonException or InvalidOperationException or FormatException or OverflowException or NullReferenceException;

    /// <summary>Which of the two webhook endpoints' secrets signed an event.</summary>
    private enum SigningEndpoint { Platform, Connect }

    /// <summary>
    /// The endpoint whose secret (any of its listed secrets, for rotation) made the signature, or null with the reason.
    /// The clock is the service's own (TimeProvider), so a test that drives a fake clock signs and checks on the same time.
    /// </summary>
    private static SigningEndpoint? SignedBy(string json, string signature, StripeOptions options, TimeProvider clock, out string refusal)
    {
        refusal = "no webhook secret configured";
        var now = clock.GetUtcNow().ToUnixTimeSeconds();
        foreach (var (secrets, endpoint) in new[] { (options.WebhookSecret, SigningEndpoint.Platform), (options.ConnectWebhookSecret, SigningEndpoint.Connect) })
        {
            foreach (var secret in StripeOptions.Secrets(secrets))
            {
                try
                {
                    EventUtility.ValidateSignature(json, signature, secret, options.WebhookToleranceSeconds, now);
                    return endpoint;
                }
                catch (Exception e) when (IsNotAStripeEvent(e))
                {
                    refusal = e.Message;
                }
            }
        }
        return null;
    }

    /// <summary>The event's id and type, and the connected account it belongs to (top-level <c>account</c>), read from its envelope.</summary>
    private readonly record struct Envelope(string Id, string Type, string? Account);

    /// <summary>
    /// Reads the envelope of a signed body with System.Text.Json, without Stripe.net's typed parse of its object: the
    /// id and type, non-empty strings; an api_version Stripe.net supports (what ConstructEvent checks); data.object, an
    /// object. Null, with the reason, for a body that is not such an event (as Stripe.net refuses a thin event).
    /// </summary>
    private static Envelope? ReadEnvelope(string json, out string refusal)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(Encoding.UTF8.GetByteCount(json));
        try
        {
            var reader = new Utf8JsonReader(buffer.AsSpan(0, Encoding.UTF8.GetBytes(json, buffer)));
            string? id = null, type = null, apiVersion = null, account = null;
            var hasObject = false;
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                refusal = "not a JSON object";
                return null;
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var wellTyped = true;
                if (reader.ValueTextEquals("id"u8))
                {
                    wellTyped = TryReadString(ref reader, out id);
                }
                else if (reader.ValueTextEquals("type"u8))
                {
                    wellTyped = TryReadString(ref reader, out type);
                }
                else if (reader.ValueTextEquals("api_version"u8))
                {
                    wellTyped = TryReadString(ref reader, out apiVersion);
                }
                else if (reader.ValueTextEquals("account"u8))
                {
                    wellTyped = TryReadString(ref reader, out account);
                }
                else if (reader.ValueTextEquals("object"u8))
                {
                    // Stripe.net refuses a thin event notification (v2.core.event) as a webhook body.
                    reader.Read();
                    wellTyped = reader.TokenType == JsonTokenType.Null || (reader.TokenType == JsonTokenType.String && !reader.ValueTextEquals("v2.core.event"u8));
                }
                else if (reader.ValueTextEquals("data"u8))
                {
                    reader.Read();
                    hasObject = false;
                    wellTyped = reader.TokenType is JsonTokenType.StartObject or JsonTokenType.Null;
                    if (reader.TokenType == JsonTokenType.StartObject)
                    {
                        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                        {
                            var isObject = reader.ValueTextEquals("object"u8);
                            reader.Read();
                            hasObject = isObject ? reader.TokenType == JsonTokenType.StartObject : hasObject;
                            reader.Skip();
                        }
                    }
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
                if (!wellTyped)
                {
                    refusal = "a mistyped id, type, api_version, object or data";
                    return null;
                }
            }
            // Nothing but white space may follow the event (the reader throws otherwise).
            reader.Read();
            if (string.IsNullOrEmpty(id) || string.IsNullOrEmpty(type) || !hasObject)
            {
                refusal = "no event id, type or data";
                return null;
            }
            if (apiVersion is null || !EventUtility.IsCompatibleApiVersion(apiVersion))
            {
                refusal = $"API version {apiVersion ?? "(none)"} is not supported";
                return null;
            }
            refusal = "";
            return new Envelope(id, type, string.IsNullOrEmpty(account) ? null : account);
        }
        catch (JsonException e)
        {
            refusal = e.Message;
            return null;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        static bool TryReadString(ref Utf8JsonReader reader, out string? value)
        {
            reader.Read();
            value = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
            return reader.TokenType is JsonTokenType.String or JsonTokenType.Null;
        }
    }

    private static IResult Duplicate(string type)
    {
        EscrowTelemetry.WebhookEvents.Add(1, new("provider", Provider), new("type", type), new("outcome", "duplicate"));
        return TypedResults.Ok(new { received = true, duplicate = true });
    }

    /// <param name="Work">Does it; "duplicate" when the escrow says the event was applied already.</param>
    /// <param name="CheckedByEscrow">
    /// The escrow recognises the event itself (it keeps the events it applied, and looks in the inbox before a change
    /// it does not know), so no inbox look-up comes first: an event that changes nothing (our own calls echoed back,
    /// most events) costs no read.
    /// </param>
    private sealed record EventRoute(Func<Task<string>> Work, bool CheckedByEscrow = false);

    private static string OutcomeOf(EscrowResult result) =>
        result.Accepted ? "applied" : result.Rejection == Rejection.DuplicateEvent ? "duplicate" : $"ignored:{result.Rejection!.Code}";

    /// <summary>What the routers use; none of them does any I/O before the work runs.</summary>
    private readonly record struct RouteServices(IGrainFactory Grains, IEscrowStore Store, IPaymentGateway Payments, TimeProvider Clock);

    /// <summary>The work an event asks for, or null when its object gives this service nothing to do.</summary>
    private delegate EventRoute? Router(Event e, RouteServices services);

    /// <summary>
    /// The router of each event type this service acts on, or null for any other type: such an event is acknowledged
    /// without Stripe.net's typed parse (most of what Stripe sends). The one list of the types acted on.
    /// </summary>
    private static Router? RouterFor(string type, string? connectedAccount) => type switch
    {
        "payment_intent.amount_capturable_updated" => static (e, s) => PaymentIntentRoute(e, s, PaymentEventKind.Authorised),
        "payment_intent.payment_failed" => static (e, s) => PaymentIntentRoute(e, s, PaymentEventKind.Failed),
        "payment_intent.canceled" => static (e, s) => PaymentIntentRoute(e, s, PaymentEventKind.Voided),
        "transfer.created" => TransferCreatedRoute,
        "transfer.reversed" => TransferReversedRoute,
        // The platform's own account.updated (no account field) says nothing about a recipient.
        "account.updated" when connectedAccount is not null => AccountUpdatedRoute,
        "charge.dispute.created" => DisputeCreatedRoute,
        "charge.dispute.closed" => DisputeClosedRoute,
        _ => null,
    };

    private static EventRoute? PaymentIntentRoute(Event e, RouteServices s, PaymentEventKind kind)
    {
        if (e.Data?.Object is not PaymentIntent pi || EscrowIdOf(pi.Metadata, pi.TransferGroup) is not { } escrowId
            || (kind == PaymentEventKind.Authorised && pi.Status != "requires_capture"))
        {
            return null;
        }
        return new(async () =>
        {
            var amount = kind == PaymentEventKind.Authorised ? pi.AmountCapturable : pi.Amount;
            var reason = kind == PaymentEventKind.Failed ? pi.LastPaymentError?.Code ?? "payment_failed" : pi.CancellationReason;
            return OutcomeOf(await s.Grains.GetGrain<IEscrowGrain>(escrowId).HandlePaymentEventAsync(
                new PaymentEvent(kind, pi.Id, amount, pi.Currency, reason, EventId: e.Id)));
        }, CheckedByEscrow: true);
    }

    private static EventRoute? TransferCreatedRoute(Event e, RouteServices s) =>
        e.Data?.Object is Transfer created && EscrowIdOf(created.Metadata, created.TransferGroup) is { } escrowId
            ? new(async () => OutcomeOf(await s.Grains.GetGrain<IEscrowGrain>(escrowId).HandlePaymentEventAsync(
                new PaymentEvent(PaymentEventKind.TransferCreated, created.Id, created.Amount, created.Currency, null, created.DestinationId, EventId: e.Id))),
                CheckedByEscrow: true)
            : null;

    private static EventRoute? TransferReversedRoute(Event e, RouteServices s)
    {
        if (e.Data?.Object is not Transfer transfer || EscrowIdOf(transfer.Metadata, transfer.TransferGroup) is not { } escrowId)
        {
            return null;
        }
        return new(async () =>
        {
            // The escrow alerts, through its outbox, on a reversal made outside this service, whether it takes it or not.
            // Only a reversal naming no escrow this service has is alerted here: there is no outbox to go through.
            var reversed = await s.Grains.GetGrain<IEscrowGrain>(escrowId).HandlePaymentEventAsync(
                new PaymentEvent(PaymentEventKind.TransferReversed, transfer.Id, transfer.AmountReversed, transfer.Currency, "transfer.reversed", EventId: e.Id));
            if (reversed.Rejection == Rejection.UnknownEscrow)
            {
                await s.Store.RaiseAlertAsync(new NewAlert(AlertKind.TransferReversed, escrowId, $"transfer_reversed/{transfer.Id}",
                    $"Transfer {transfer.Id} was reversed ({transfer.AmountReversed} {transfer.Currency}) outside this service, on an escrow that does not exist ({reversed.RejectionCode}).", s.Clock.GetUtcNow()));
            }
            return reversed.Accepted ? "applied" : $"ignored:{reversed.RejectionCode}";
        });
    }

    private static EventRoute? AccountUpdatedRoute(Event e, RouteServices s)
    {
        if (e.Data?.Object is Account account && account.Id == e.Account && account.Metadata?.TryGetValue("recipient_id", out var recipientId) == true)
        {
            return new(async () =>
            {
                // Transfers need the transfers capability only; payouts to the bank may still wait (payouts_enabled).
                var canReceive = account.Capabilities?.Transfers == "active";
                await s.Grains.GetGrain<IRecipientGrain>(recipientId).AccountUpdatedAsync(account.Id, canReceive);
                return "applied";
            });
        }
        return null;
    }

    private static EventRoute? DisputeCreatedRoute(Event e, RouteServices s)
    {
        if (e.Data?.Object is not Dispute dispute)
        {
            return null;
        }
        return new(async () =>
        {
            // The dispute names the payment intent; its metadata names the escrow, which stops all automatic actions.
            var disputed = dispute.PaymentIntentId is { } piId ? (await s.Payments.GetPaymentIntentAsync(piId)).EscrowId : null;
            if (disputed is { } disputedEscrow)
            {
                var opened = await s.Grains.GetGrain<IEscrowGrain>(disputedEscrow).HandlePaymentEventAsync(new PaymentEvent(PaymentEventKind.DisputeOpened, dispute.Id, dispute.Amount, dispute.Currency, dispute.Reason, EventId: e.Id));
                return opened.Accepted ? "applied" : $"ignored:{opened.RejectionCode}";
            }
            await s.Store.RaiseAlertAsync(new NewAlert(AlertKind.DisputeOpened, null, $"dispute_opened/{dispute.Id}",
                $"Dispute {dispute.Id} on charge {dispute.ChargeId} ({dispute.Amount} {dispute.Currency}) matches no escrow.", s.Clock.GetUtcNow()));
            return "alerted";
        });
    }

    /// <summary>The bank's decision: won or lost (an inquiry closed without a chargeback, warning_closed, moves no money).</summary>
    private static EventRoute? DisputeClosedRoute(Event e, RouteServices s)
    {
        if (e.Data?.Object is not Dispute dispute || dispute.Status is not ("won" or "lost") || dispute.PaymentIntentId is not { } piId)
        {
            return null;
        }
        return new(async () =>
        {
            if ((await s.Payments.GetPaymentIntentAsync(piId)).EscrowId is not { } escrowId)
            {
                await s.Store.RaiseAlertAsync(new NewAlert(AlertKind.DisputeClosed, null, $"dispute_closed/{dispute.Id}",
                    $"Dispute {dispute.Id} on charge {dispute.ChargeId} was {dispute.Status}; it matches no escrow.", s.Clock.GetUtcNow()));
                return "alerted";
            }
            var closed = await s.Grains.GetGrain<IEscrowGrain>(escrowId).HandlePaymentEventAsync(
                new PaymentEvent(PaymentEventKind.DisputeClosed, dispute.Id, dispute.Amount, dispute.Currency, dispute.Status, EventId: e.Id));
            return closed.Accepted ? "applied" : $"ignored:{closed.RejectionCode}";
        });
    }

    private static Guid? EscrowIdOf(IDictionary<string, string>? metadata, string? transferGroup) =>
        metadata?.TryGetValue("escrow_id", out var id) == true && Guid.TryParse(id, out var fromMetadata) ? fromMetadata
        : Guid.TryParse(transferGroup, out var fromGroup) ? fromGroup
        : null;

    [LoggerMessage(Level = LogLevel.Warning, Message = "Stripe webhook refused: {Reason}")]
    private static partial void LogRejected(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Stripe event {EventId} ({Type}): {Outcome}")]
    private static partial void LogProcessed(ILogger logger, string eventId, string type, string outcome);
}
