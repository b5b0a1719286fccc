using System.Text.RegularExpressions;
using Escrow.Grains.Domain;

namespace Escrow.Api.Endpoints;

public sealed record PostmarkHeader(string? Name, string? Value);

public sealed record PostmarkAddress(string? Email, string? Name, string? MailboxHash);

public sealed record PostmarkInbound(
    string? MessageID, string? From, PostmarkAddress? FromFull, string? To, List<PostmarkAddress>? ToFull, string? Cc, List<PostmarkAddress>? CcFull,
    string? OriginalRecipient, string? MailboxHash, string? Subject, string? TextBody, string? StrippedTextReply, List<PostmarkHeader>? Headers);

/// <summary>
/// Postmark's inbound webhook: a reply counts only when it is a human reply from the recipient, received by the
/// deadline plus grace. Unmatched or ignored mail gets 200 (Postmark must not retry it); a failure gets 503.
/// </summary>
public static partial class PostmarkInboundEndpoints
{
    public const string Provider = "postmark";
    public const int PreviewLength = 500;

    /// <summary>Postmark sends PascalCase names; any casing is accepted.</summary>
    private static readonly JsonSerializerOptions Json = new() { PropertyNameCaseInsensitive = true, MaxDepth = 16 };

    public static void MapPostmarkInbound(this IEndpointRouteBuilder app) =>
        app.MapWebhook("/webhooks/postmark/inbound", HandleAsync, ApiAuth.PostmarkBasic,
            ApiExamples.PostmarkInbound,
            "receivePostmarkInbound", "Receive an inbound e-mail from Postmark",
            "A reply to an escrow's e-mail, found by the reply address's `MailboxHash` token. Field names are accepted in any case "
            + "(Postmark sends PascalCase). De-duplicated by `MessageID`; a 5xx makes Postmark retry.")
            .Problems(StatusCodes.Status401Unauthorized);

    private static async Task<IResult> HandleAsync(HttpRequest request, IOptions<PostmarkOptions> options, IEscrowStore store, IGrainFactory grains, TimeProvider clock, IConfiguration configuration)
    {
        var receivedAt = clock.GetUtcNow();
        if (!Authorized(request, options.Value))
        {
            request.HttpContext.Response.Headers.WWWAuthenticate = "Basic realm=\"postmark-inbound\"";
            return Problems.Unauthorized("Postmark's inbound webhook needs its HTTP Basic credentials.");
        }
        if (request.ContentLength > options.Value.InboundMaxBytes)
        {
            return Problems.Make(StatusCodes.Status413PayloadTooLarge, "Body too large", $"Inbound messages may be at most {options.Value.InboundMaxBytes} bytes.");
        }
        PostmarkInbound? mail;
        try
        {
            using var buffer = new MemoryStream();
            await request.Body.CopyToAsync(buffer, request.HttpContext.RequestAborted);
            if (buffer.Length > options.Value.InboundMaxBytes)
            {
                return Problems.Make(StatusCodes.Status413PayloadTooLarge, "Body too large", $"Inbound messages may be at most {options.Value.InboundMaxBytes} bytes.");
            }
            mail = JsonSerializer.Deserialize<PostmarkInbound>(buffer.ToArray(), Json);
        }
        catch (JsonException e)
        {
            return Problems.BadRequest($"The body is not a Postmark inbound message: {e.Message}");
        }
        if (mail?.MessageID is not { Length: > 0 and <= 200 } messageId)
        {
            return Problems.BadRequest("A Postmark inbound message has a MessageID.");
        }
        if (await store.IsWebhookProcessedAsync(Provider, messageId))
        {
            return TypedResults.Ok(new { received = true, duplicate = true });
        }
        var requireAuthenticated = options.Value.RequireAuthenticatedReplies ?? Escrow.Silo.LiveMode.IsLive(configuration);
        var outcome = await ProcessAsync(mail, messageId, receivedAt, store, grains, requireAuthenticated);
        // Recorded as processed only now that the work succeeded; a failure answers 5xx and Postmark retries.
        await store.RecordProcessedWebhookAsync(Provider, messageId, "inbound", receivedAt, outcome, clock.GetUtcNow());
        EscrowTelemetry.WebhookEvents.Add(1, new("provider", Provider), new("type", "inbound"), new("outcome", outcome));
        return TypedResults.Ok(new { received = true, outcome });
    }

    private static async Task<string> ProcessAsync(PostmarkInbound mail, string messageId, DateTimeOffset receivedAt, IEscrowStore store, IGrainFactory grains, bool requireAuthenticated)
    {
        var from = mail.FromFull?.Email ?? mail.From ?? "";
        var subject = Truncate(mail.Subject ?? "", 200);
        var text = mail.StrippedTextReply is { Length: > 0 } stripped ? stripped : mail.TextBody ?? "";
        var token = FindToken(mail);
        Guid? addressed = ReplyToken.TryGetEscrowId(token, out var parsed) ? parsed : null;
        // The receipt is durable before anything is judged: a retry of this message (Postmark retries a delivery that
        // failed, a crash included) is judged by the first delivery's time, and a refund waits for a pending one.
        receivedAt = await store.RecordInboundReceiptAsync(new InboundMessageRecord(messageId, addressed, from, subject, receivedAt, false, false, InboundMessageRecord.Pending, Truncate(text, PreviewLength)));
        if (token is null || !ReplyToken.TryGetEscrowId(token, out var escrowId))
        {
            await store.RecordInboundMessageAsync(new InboundMessageRecord(messageId, null, from, subject, receivedAt, false, false, "unmatched", Truncate(text, PreviewLength)));
            return "ignored:unmatched";
        }
        var escrow = grains.GetGrain<IEscrowGrain>(escrowId);
        var context = await escrow.GetReplyContextAsync();
        if (context is null || !TokenHash.OpensReply(context.ReplyTokenHash, token))
        {
            await store.RecordInboundMessageAsync(new InboundMessageRecord(messageId, null, from, subject, receivedAt, false, false, "unmatched", Truncate(text, PreviewLength)));
            return "ignored:unmatched";
        }
        var timing = ReplyTimings.Of(receivedAt, context.Deadline, context.ReplyDeadline);
        var withinDeadline = timing == ReplyTiming.OnTime;
        var graceUsed = timing == ReplyTiming.InGrace;
        string? ignored = AutoReplyReason(mail, text);
        if (ignored is null)
        {
            var recipient = await grains.GetGrain<IRecipientGrain>(context.RecipientId).GetAsync();
            if (recipient is null || !string.Equals(recipient.Email, from, StringComparison.OrdinalIgnoreCase))
            {
                ignored = "unknown_sender";
                await escrow.RefuseReplyAsync(new RefusedReply(messageId, RefusedReplyReason.UnknownSender));
            }
        }
        if (ignored is null && requireAuthenticated
            && ReplyAuthentication.Refusal([.. (mail.Headers ?? []).Select(h => (h.Name ?? "", h.Value ?? ""))], from) is { } why)
        {
            // The From address is the recipient's, but the receiving server says the message did not come from its domain.
            ignored = ReplyAuthentication.NotAuthenticated;
            await escrow.RefuseReplyAsync(new RefusedReply(messageId, RefusedReplyReason.NotAuthenticated, why));
        }
        if (ignored is null)
        {
            var result = await escrow.AcceptReplyAsync(new ReplyReceived(receivedAt, "email", text));
            ignored = result.Rejection?.Code;
        }
        await store.RecordInboundMessageAsync(new InboundMessageRecord(messageId, escrowId, from, subject, receivedAt, withinDeadline, graceUsed, ignored, Truncate(text, PreviewLength)));
        return ignored is null ? "accepted" : $"ignored:{ignored}";
    }

    /// <summary>Out-of-office and other automatic mail must not release money.</summary>
    private static string? AutoReplyReason(PostmarkInbound mail, string text)
    {
        string? Header(string name) => mail.Headers?.FirstOrDefault(h => string.Equals(h.Name, name, StringComparison.OrdinalIgnoreCase))?.Value?.Trim();
        if (Header("Auto-Submitted") is { } auto && !auto.Equals("no", StringComparison.OrdinalIgnoreCase))
        {
            return "auto_reply";
        }
        if (Header("X-Autoreply") is not null || Header("X-Autorespond") is not null)
        {
            return "auto_reply";
        }
        if (Header("Precedence") is { } precedence && precedence.ToLowerInvariant() is "bulk" or "junk" or "auto_reply" or "list")
        {
            return "auto_reply";
        }
        var subject = mail.Subject ?? "";
        if (OutOfOffice().IsMatch(subject) && string.IsNullOrWhiteSpace(mail.StrippedTextReply))
        {
            return "auto_reply";
        }
        return string.IsNullOrWhiteSpace(text) ? "empty_reply" : null;
    }

    private static string? FindToken(PostmarkInbound mail)
    {
        if (mail.MailboxHash is { Length: > 0 } hash)
        {
            return hash.Trim().ToLowerInvariant();
        }
        var addresses = new StringBuilder();
        addresses.Append(mail.To).Append(' ').Append(mail.Cc).Append(' ').Append(mail.OriginalRecipient);
        foreach (var a in (mail.ToFull ?? []).Concat(mail.CcFull ?? []))
        {
            addresses.Append(' ').Append(a.Email);
        }
        var match = ReplyAddress().Match(addresses.ToString());
        return match.Success ? match.Groups[1].Value.ToLowerInvariant() : null;
    }

    internal static bool Authorized(HttpRequest request, PostmarkOptions options)
    {
        var header = request.Headers.Authorization.ToString();
        if (!header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }
        string decoded;
        try
        {
            decoded = Encoding.UTF8.GetString(Convert.FromBase64String(header[6..].Trim()));
        }
        catch (FormatException)
        {
            return false;
        }
        var colon = decoded.IndexOf(':', StringComparison.Ordinal);
        if (colon < 0)
        {
            return false;
        }
        // Both parts are always compared, in constant time.
        var userOk = ApiKeyRegistry.FixedTimeEquals(options.InboundUsername ?? "", decoded[..colon]);
        var passwordOk = ApiKeyRegistry.FixedTimeEquals(options.InboundPassword ?? "", decoded[(colon + 1)..]);
        return userOk & passwordOk;
    }

    private static string Truncate(string text, int length) => text.Length <= length ? text : text[..length];

    // 68 hex digits (64 in a reply address made before tokens were derived from the token secret).
    [GeneratedRegex(@"reply\+([0-9a-fA-F]{68}|[0-9a-fA-F]{64})@", RegexOptions.CultureInvariant)]
    private static partial Regex ReplyAddress();

    [GeneratedRegex(@"(out of (the )?office|automatic reply|auto(matic)?[- ]?reply|absence|abwesenheit|r[ée]ponse automatique)", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex OutOfOffice();
}
