using Escrow.Grains.Domain;
using Escrow.Grains.Email;

namespace Escrow.Api.Endpoints;

/// <summary>Postmark's bounce webhook body (the fields the service reads).</summary>
public sealed record PostmarkBounce(
    long? ID, string? Type, string? MessageID, string? Email, string? Description, string? Details, DateTimeOffset? BouncedAt, string? RecordType);

/// <summary>
/// Postmark's bounce webhook: the bounce is written to the e-mail log beside the sent e-mail it names (by Postmark's
/// MessageID, else the latest one to that address). A bounced new-message e-mail of a held escrow means the recipient
/// will never see the question, so an operator is told (<c>recipient_unreachable</c>). Unmatched bounces get 200.
/// </summary>
public static class PostmarkBounceEndpoints
{
    public const string Provider = "postmark-bounce";

    private static readonly JsonSerializerOptions Json = new() { PropertyNameCaseInsensitive = true, MaxDepth = 16 };

    public static readonly PostmarkBounce Example = new(
        4323372036854775807, "HardBounce", "883953f4-6105-42a2-a16a-77a8eac79483", "alice@example.com",
        "The server was unable to deliver your message (ex: unknown user, mailbox not found).", "smtp;550 5.1.1 unknown user",
        new DateTimeOffset(2026, 12, 4, 10, 0, 0, TimeSpan.Zero), "Bounce");

    public static void MapPostmarkBounce(this IEndpointRouteBuilder app) =>
        app.MapWebhook("/webhooks/postmark/bounce", HandleAsync, ApiAuth.PostmarkBasic,
            Example,
            "receivePostmarkBounce", "Receive a bounce from Postmark",
            "Recorded in the e-mail log of the sent e-mail named by `MessageID` (else the latest one sent to `Email`). A bounced "
            + "new-message e-mail of a held escrow raises the `recipient_unreachable` alert. De-duplicated by `ID`; a 5xx makes Postmark retry.")
            .Problems(StatusCodes.Status401Unauthorized);

    private static async Task<IResult> HandleAsync(HttpRequest request, IOptions<PostmarkOptions> options, IEscrowStore store, IGrainFactory grains, TimeProvider clock)
    {
        var receivedAt = clock.GetUtcNow();
        if (!PostmarkInboundEndpoints.Authorized(request, options.Value))
        {
            request.HttpContext.Response.Headers.WWWAuthenticate = "Basic realm=\"postmark-bounce\"";
            return Problems.Unauthorized("Postmark's bounce webhook needs its HTTP Basic credentials.");
        }
        PostmarkBounce? bounce;
        try
        {
            bounce = await JsonSerializer.DeserializeAsync<PostmarkBounce>(request.Body, Json, request.HttpContext.RequestAborted);
        }
        catch (JsonException e)
        {
            return Problems.BadRequest($"The body is not a Postmark bounce: {e.Message}");
        }
        if (bounce?.ID is not { } bounceId)
        {
            return Problems.BadRequest("A Postmark bounce has an ID.");
        }
        if (bounce.MessageID is { Length: > 200 } || bounce.Email is { Length: > 320 })
        {
            return Problems.BadRequest("MessageID or Email is too long.");
        }
        var eventId = bounceId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (await store.IsWebhookProcessedAsync(Provider, eventId))
        {
            return TypedResults.Ok(new WebhookAck(true, Duplicate: true));
        }
        var outcome = await RecordAsync(bounce, store, grains, receivedAt);
        await store.RecordProcessedWebhookAsync(Provider, eventId, "bounce", receivedAt, outcome, clock.GetUtcNow());
        EscrowTelemetry.WebhookEvents.Add(1, new("provider", Provider), new("type", "bounce"), new("outcome", outcome));
        return TypedResults.Ok(new WebhookAck(true, outcome));
    }

    private static async Task<string> RecordAsync(PostmarkBounce bounce, IEscrowStore store, IGrainFactory grains, DateTimeOffset now)
    {
        var sent = await store.FindSentEmailAsync(bounce.MessageID, bounce.Email);
        var error = Truncate($"{bounce.Type ?? "Bounce"}: {bounce.Description} {bounce.Details}".Trim(), 1_000);
        await store.LogEmailAsync(new EmailLogEntry(
            sent?.EscrowId, sent?.Kind ?? "unknown", Truncate(bounce.Email ?? sent?.To ?? "", 320), sent?.Subject ?? "", "bounced",
            bounce.MessageID ?? sent?.ProviderMessageId, error, bounce.BouncedAt ?? now));
        if (sent?.EscrowId is not { } escrowId)
        {
            return "unmatched";
        }
        // The escrow decides whether an operator must know (a held escrow whose question the recipient will not see).
        var decided = await grains.GetGrain<IEscrowGrain>(escrowId).EmailBouncedAsync(new BouncedEmail(sent.Kind, sent.To, error));
        return decided.Accepted ? "recipient_unreachable" : "recorded";
    }

    private static string Truncate(string text, int length) => text.Length <= length ? text : text[..length];
}
