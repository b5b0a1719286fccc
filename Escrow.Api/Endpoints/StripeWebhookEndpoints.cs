using Escrow.Grains;
using Escrow.Grains.Domain;
using Escrow.Grains.Payments;
using Escrow.Grains.Storage;
using Microsoft.Extensions.Options;
using Stripe;

namespace Escrow.Api.Endpoints;

/// <summary>
/// Stripe's webhook: authenticate the raw body, record the event durably, route it to the grain that owns it,
/// and mark it processed only after that work succeeded, so a failed delivery is processed again on Stripe's retry.
/// </summary>
public static partial class StripeWebhookEndpoints
{
    public const string Provider = WebhookProviders.Stripe;

    public static void MapStripeWebhook(this IEndpointRouteBuilder app) =>
        app.MapPost("/webhooks/stripe", HandleAsync).WithTags("Webhooks").DisableAntiforgery();

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
        Event stripeEvent;
        try
        {
            // Stripe.net throws NullReferenceException on a signed body without api_version, and JSON/format errors on
            // mistyped fields: all mean "not a Stripe event". The clock is the service's own (TimeProvider), so a test that drives a fake clock signs and checks on the same time.
            stripeEvent = EventUtility.ConstructEvent(json, signature, options.Value.WebhookSecret, options.Value.WebhookToleranceSeconds, clock.GetUtcNow().ToUnixTimeSeconds());
        }
        catch (Exception e) when (e is StripeException or ArgumentException or Newtonsoft.Json.JsonException or System.Text.Json.JsonException or InvalidOperationException or FormatException or NullReferenceException)
        {
            LogRejected(log, e.Message);
            return Problems.BadRequest("The Stripe-Signature header is missing, wrong or too old, or the event's API version is not supported.");
        }
        if (string.IsNullOrEmpty(stripeEvent.Id) || string.IsNullOrEmpty(stripeEvent.Type) || stripeEvent.Data is null)
        {
            // A signed body that is not an event (no id, type or data) is refused, not recorded (fuzzer: no data → 500).
            LogRejected(log, "no event id, type or data");
            return Problems.BadRequest("The Stripe-Signature header is missing, wrong or too old, or the event's API version is not supported.");
        }
        var receivedAt = clock.GetUtcNow();
        var route = Route(stripeEvent, grains, store, payments, clock);
        string outcome;
        if (route is null)
        {
            // A type we do not act on (e.g. payment_intent.succeeded after our own capture): nothing to apply, nothing
            // to deduplicate, so no inbox look-up either.
            outcome = "acknowledged";
        }
        else if (!route.CheckedByEscrow && await store.IsWebhookProcessedAsync(Provider, stripeEvent.Id))
        {
            return Duplicate(stripeEvent);
        }
        else
        {
            outcome = await route.Work();
            if (outcome == "duplicate")
            {
                return Duplicate(stripeEvent);
            }
        }
        // Recorded once the work succeeded (a failure answers 5xx and Stripe delivers again). An event that changed
        // nothing (our own calls echoed back, duplicates, unknown types) needs no record: processing it again also
        // changes nothing, so it costs no commit.
        if (outcome is "applied" or "alerted")
        {
            await store.RecordProcessedWebhookAsync(Provider, stripeEvent.Id, stripeEvent.Type, receivedAt, outcome, clock.GetUtcNow());
        }
        LogProcessed(log, stripeEvent.Id, stripeEvent.Type, outcome);
        EscrowTelemetry.WebhookEvents.Add(1, new("provider", Provider), new("type", stripeEvent.Type), new("outcome", outcome.Split(':')[0]));
        return TypedResults.Ok(new { received = true, outcome });
    }

    private static IResult Duplicate(Event stripeEvent)
    {
        EscrowTelemetry.WebhookEvents.Add(1, new("provider", Provider), new("type", stripeEvent.Type), new("outcome", "duplicate"));
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
        result.Accepted ? "applied" : result.RejectionCode == Rejection.DuplicateEvent.Code ? "duplicate" : $"ignored:{result.RejectionCode}";

    /// <summary>The work an event asks for, or null for an event this service does not act on (decided without any I/O).</summary>
    private static EventRoute? Route(Event e, IGrainFactory grains, IEscrowStore store, IPaymentGateway payments, TimeProvider clock)
    {
        switch (e.Data?.Object)
        {
            case PaymentIntent pi when EscrowIdOf(pi.Metadata, pi.TransferGroup) is { } escrowId:
                var kind = e.Type switch
                {
                    "payment_intent.amount_capturable_updated" when pi.Status == "requires_capture" => PaymentEventKind.Authorised,
                    "payment_intent.payment_failed" => PaymentEventKind.Failed,
                    "payment_intent.canceled" => PaymentEventKind.Voided,
                    _ => (PaymentEventKind?)null,
                };
                if (kind is not { } paymentKind)
                {
                    return null;
                }
                return new(async () =>
                {
                    var amount = paymentKind == PaymentEventKind.Authorised ? pi.AmountCapturable : pi.Amount;
                    var reason = paymentKind == PaymentEventKind.Failed ? pi.LastPaymentError?.Code ?? "payment_failed" : pi.CancellationReason;
                    return OutcomeOf(await grains.GetGrain<IEscrowGrain>(escrowId).HandlePaymentEventAsync(
                        new PaymentEvent(paymentKind, pi.Id, amount, pi.Currency, reason, EventId: e.Id)));
                }, CheckedByEscrow: true);
            case Transfer created when e.Type == "transfer.created" && EscrowIdOf(created.Metadata, created.TransferGroup) is { } escrowId:
                return new(async () => OutcomeOf(await grains.GetGrain<IEscrowGrain>(escrowId).HandlePaymentEventAsync(
                    new PaymentEvent(PaymentEventKind.TransferCreated, created.Id, created.Amount, created.Currency, null, created.DestinationId, EventId: e.Id))),
                    CheckedByEscrow: true);
            case Transfer transfer when e.Type == "transfer.reversed" && EscrowIdOf(transfer.Metadata, transfer.TransferGroup) is { } escrowId:
                return new(async () =>
                {
                    var reversed = await grains.GetGrain<IEscrowGrain>(escrowId).HandlePaymentEventAsync(new PaymentEvent(PaymentEventKind.TransferReversed, transfer.Id, transfer.AmountReversed, transfer.Currency, "transfer.reversed"));
                    await store.RaiseAlertAsync(new NewAlert("transfer_reversed", "critical", escrowId, $"transfer_reversed/{transfer.Id}",
                        $"Transfer {transfer.Id} was reversed ({transfer.AmountReversed} {transfer.Currency}).", clock.GetUtcNow()));
                    return reversed.Accepted ? "applied" : $"ignored:{reversed.RejectionCode}";
                });
            case Account account when e.Type == "account.updated" && account.Metadata?.TryGetValue("recipient_id", out var recipientId) == true:
                return new(async () =>
                {
                    var canReceive = account.PayoutsEnabled && account.Capabilities?.Transfers == "active";
                    await grains.GetGrain<IRecipientGrain>(recipientId).AccountUpdatedAsync(account.Id, canReceive);
                    return "applied";
                });
            case Dispute dispute when e.Type == "charge.dispute.created":
                return new(async () =>
                {
                    // The dispute names the payment intent; its metadata names the escrow, which stops all automatic actions.
                    var disputed = dispute.PaymentIntentId is { } piId ? (await payments.GetPaymentIntentAsync(piId)).EscrowId : null;
                    if (disputed is { } disputedEscrow)
                    {
                        var opened = await grains.GetGrain<IEscrowGrain>(disputedEscrow).HandlePaymentEventAsync(new PaymentEvent(PaymentEventKind.DisputeOpened, dispute.Id, dispute.Amount, dispute.Currency, dispute.Reason));
                        return opened.Accepted ? "applied" : $"ignored:{opened.RejectionCode}";
                    }
                    await store.RaiseAlertAsync(new NewAlert("dispute_opened", "critical", null, $"dispute_opened/{dispute.Id}",
                        $"Dispute {dispute.Id} on charge {dispute.ChargeId} ({dispute.Amount} {dispute.Currency}) matches no escrow.", clock.GetUtcNow()));
                    return "alerted";
                });
            default:
                return null;
        }
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
