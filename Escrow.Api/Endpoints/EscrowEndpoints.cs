using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace Escrow.Api.Endpoints;

/// <summary>The create's body; the attributes describe it in the OpenAPI document, <c>Validate</c> enforces it with its own messages.</summary>
public sealed record CreateEscrowBody(
    [property: Required, StringLength(64, MinimumLength = 1), RegularExpression("^[A-Za-z0-9_-]+$"), Description("The recipient's id.")] string? RecipientId,
    [property: Required, StringLength(254, MinimumLength = 3), EmailAddress, Description("Where the sender is told what happens.")] string? SenderEmail,
    [property: Required, StringLength(64, MinimumLength = 2), Description("An ISO 8601 duration among the offered windows (by default PT24H, PT48H, PT72H), accepted in any case.")] string? ResponseWindow,
    [property: Required, StringLength(EscrowEndpoints.SubjectLengthMax, MinimumLength = 1), Description("Printable characters, no line breaks.")] string? Subject,
    [property: Required, StringLength(EscrowEndpoints.MessageLengthMax, MinimumLength = EscrowEndpoints.MessageLengthMin), Description("The message e-mailed to the recipient.")] string? Message,
    [property: StringLength(253, MinimumLength = 4), RegularExpression("^pm_[A-Za-z0-9_]{1,250}$"), Description("A Stripe payment method to confirm at once; without it, confirm clientSecret with Stripe.js.")] string? PaymentMethodId = null);

public sealed record ReplyBody(
    [property: StringLength(EscrowEndpoints.ReplyTextLengthMax), Description("The reply's text, kept with the escrow's history.")] string? Text = null);

public sealed record EscrowResponse(
    Guid Id, string Status, string RecipientId, long AmountMinor, string Currency, long RecipientShareMinor, long PlatformFeeMinor,
    string ResponseWindow, DateTimeOffset CreatedAt, DateTimeOffset ExpiresAt, DateTimeOffset ReplyDeadline,
    string? PaymentIntentId, string? ClientSecret, string? AccessToken, string? TransferId,
    IReadOnlyList<HistoryResponse>? History, string? LastPaymentError = null,
    string? RecipientDisplayName = null, bool NeedsOperator = false, DisputeResponse? Dispute = null);

/// <summary>The last dispute (chargeback) of the escrow's charge: status open, won or lost (Stripe decided), or resolved (an operator closed it).</summary>
public sealed record DisputeResponse(string Id, string Status);

public sealed record HistoryResponse(string Status, DateTimeOffset At, string Event, long? AmountMinor, string? Detail);

public static partial class EscrowEndpoints
{
    public const int SubjectLengthMax = 200;
    public const int MessageLengthMin = 10;
    public const int MessageLengthMax = 10_000;
    public const int IdempotencyKeyLengthMax = 255;
    public const int ReplyTextLengthMax = 100_000;

    public static void MapEscrows(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/escrows").WithTags("Escrows");
        group.MapPost("/", CreateAsync).RateLimited(RateLimits.Senders)
            .Describe("createEscrow", "Create an escrow (hold the sender's payment)",
                "Anonymous (rate limited per address). Requires an `Idempotency-Key` header: a retry with the same key and body returns the same escrow; "
                + "the same key with another body is refused (422). The price comes from the recipient's pricing for the chosen response window. "
                + "`responseWindow` is an ISO 8601 duration accepted in any case (`PT24H`, `pt24h`). With `paymentMethodId` the payment is confirmed at once "
                + "(a declined card answers 402 with `escrowId`, `paymentIntentId`, `clientSecret` and `accessToken`: the escrow waits for another card until its "
                + "unpaid expiry; confirm `clientSecret` with Stripe.js, or repeat this request with the same key and another `paymentMethodId`, which is not "
                + "part of the body's comparison); without it, confirm `clientSecret` with Stripe.js.")
            .Authenticated()
            .Header("Idempotency-Key", required: true, IdempotencyKeyLengthMax, "Printable characters, the same for every retry of this request (the escrow's id is derived from it).")
            .JsonBody(new CreateEscrowBody("dr-lee", "sam@example.com", "PT48H", "A question about my MRI", "Could you look at the report I attach and tell me whether I need a second opinion?", "pm_card_visa"))
            .Produces<EscrowResponse>(StatusCodes.Status201Created)
            .Problems(StatusCodes.Status402PaymentRequired, StatusCodes.Status404NotFound, StatusCodes.Status409Conflict, StatusCodes.Status422UnprocessableEntity,
                StatusCodes.Status429TooManyRequests, StatusCodes.Status503ServiceUnavailable);
        group.MapGet("/{id}", GetAsync).RateLimited(RateLimits.Readers)
            .Describe("getEscrow", "Read an escrow with its history",
                "The sender reads it with the access token returned by the create (`Authorization: Bearer <accessToken>`); the platform with its key. "
                + "A token that does not open this escrow answers 401, the same whether the escrow exists or not. Reads by token are rate limited per address (429).")
            .Authenticated(ApiAuth.AccessToken, ApiAuth.PlatformKey, ApiAuth.AdminKey)
            .Produces<EscrowResponse>()
            .Problems(StatusCodes.Status401Unauthorized, StatusCodes.Status404NotFound, StatusCodes.Status429TooManyRequests, StatusCodes.Status503ServiceUnavailable);
        group.MapPost("/{id}/response", ReplyAsync).RequireApiKey(ApiRole.Platform)
            .Describe("replyToEscrow", "Accept the recipient's reply (releases the money)",
                "The recipient answered in the platform's UI. Before the deadline plus grace the escrow is released: captured and transferred to the recipient. "
                + "A reply too late, or to an escrow in another state, is refused with 409 and the rule's name in `rejection`. The body is optional.")
            .JsonBody(new ReplyBody("Thanks for the report: no second opinion needed, the finding is benign."), optional: true)
            .Produces<EscrowResponse>()
            .Problems(StatusCodes.Status404NotFound, StatusCodes.Status409Conflict, StatusCodes.Status503ServiceUnavailable);
    }

    /// <summary>The escrow id is derived from the Idempotency-Key, so a retried request finds the escrow it created.</summary>
    public static Guid EscrowIdFor(string idempotencyKey)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes("escrow/idempotency/" + idempotencyKey));
        hash[6] = (byte)((hash[6] & 0x0F) | 0x80);
        hash[8] = (byte)((hash[8] & 0x3F) | 0x80);
        return new Guid(hash.AsSpan(0, 16));
    }

    private static async Task<IResult> CreateAsync(HttpRequest request, IGrainFactory grains, IOptions<EscrowOptions> options, ClientAddresses addresses, TimeProvider clock)
    {
        var key = request.Headers["Idempotency-Key"].ToString();
        if (string.IsNullOrWhiteSpace(key) || key.Length > IdempotencyKeyLengthMax || key.Any(char.IsControl))
        {
            return Problems.BadRequest($"The Idempotency-Key header is required: 1 to {IdempotencyKeyLengthMax} printable characters, the same for every retry of this request.");
        }
        var (body, error) = await JsonBody.ReadAsync<CreateEscrowBody>(request);
        if (body is null)
        {
            return error!;
        }
        // Durations are written "pt24h" by some clients: any case is the same window (and the same request for idempotency).
        body = body with { ResponseWindow = body.ResponseWindow?.ToUpperInvariant() };
        var errors = Validate(body, options.Value, out var window);
        if (errors.Count > 0)
        {
            return Problems.Validation(errors);
        }
        // Card testing: a client address or sender e-mail with too many declined cards lately confirms nothing more.
        var guards = new[] { ClientGuardKeys.Address(addresses.PartitionOf(request.HttpContext)), ClientGuardKeys.Sender(body.SenderEmail!) }
            .Select(k => grains.GetGrain<IClientGuardGrain>(k)).ToArray();
        if ((await Task.WhenAll(guards.Select(g => g.CheckDeclinesAsync()))).FirstOrDefault(a => !a.Allowed) is { } blocked)
        {
            var wait = blocked.Until is { } until ? Math.Max(1, (long)Math.Ceiling((until - clock.GetUtcNow()).TotalSeconds)) : 3600;
            request.HttpContext.Response.Headers.RetryAfter = wait.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return Problems.Rejection(blocked.Rejection!);
        }
        var id = EscrowIdFor(key);
        var create = new CreateEscrow(body.RecipientId!, body.SenderEmail!, window, body.Subject!.Trim(), body.Message!, body.PaymentMethodId, RequestHash(body));
        var result = await grains.GetGrain<IEscrowGrain>(id).CreateAsync(create);
        if (!result.Accepted)
        {
            return Problems.Rejection(result.Rejection!, result.View?.Id);
        }
        var view = result.View!;
        if (view.LastPaymentError is not null && view.Status is "payment_failed" or "awaiting_payment")
        {
            // Each decline counts against the client address, the sender e-mail and the whole service; the same request
            // retried reports the same decline (named by its place in the history), which counts once.
            var declineId = $"{view.Id:N}/{view.History.Count(h => h.Event == "payment_declined")}";
            await Task.WhenAll(guards.Append(grains.GetGrain<IClientGuardGrain>(ClientGuardKeys.Everyone)).Select(g => g.RecordDeclineAsync(declineId)));
        }
        if (view.Status == "payment_failed")
        {
            return Problems.Make(StatusCodes.Status402PaymentRequired, "payment_failed", "The card was declined and the escrow expired unpaid; no message was sent. Create a new escrow with a new Idempotency-Key.",
                extensions: new Dictionary<string, object?> { ["escrowId"] = view.Id, ["escrowStatus"] = view.Status, ["rejection"] = "payment_failed", ["lastPaymentError"] = view.LastPaymentError });
        }
        if (view.Status == "awaiting_payment" && view.LastPaymentError is not null)
        {
            // Stripe keeps the PaymentIntent for another try: the sender confirms it with another card (client side, with
            // the client secret) or sends this same request again, same Idempotency-Key, with another paymentMethodId.
            return Problems.Make(StatusCodes.Status402PaymentRequired, "payment_failed",
                "The card was declined; no message was sent yet. Try another card: confirm the PaymentIntent with clientSecret, or repeat this request with the same Idempotency-Key and another paymentMethodId.",
                extensions: new Dictionary<string, object?>
                {
                    ["escrowId"] = view.Id, ["escrowStatus"] = view.Status, ["rejection"] = "payment_failed", ["lastPaymentError"] = view.LastPaymentError,
                    ["paymentIntentId"] = view.PaymentIntentId, ["clientSecret"] = view.ClientSecret, ["accessToken"] = view.AccessToken is { Length: > 0 } token ? token : null,
                });
        }
        if (view.PaymentIntentId is null)
        {
            return Problems.Unavailable("The payment provider did not answer; the escrow is kept. Retry the same request with the same Idempotency-Key.");
        }
        return TypedResults.Created($"/v1/escrows/{view.Id}", ToResponse(view, includeSecrets: true, includeHistory: false));
    }

    private static async Task<IResult> GetAsync(string id, HttpContext http, IGrainFactory grains, ApiKeyRegistry keys)
    {
        var caller = keys.Identify(http.Request.Headers[ApiKeyRegistry.Header]);
        var bearer = http.Request.Headers.Authorization.ToString();
        var token = bearer.StartsWith("Bearer ", StringComparison.Ordinal) ? bearer["Bearer ".Length..].Trim() : null;
        if (caller is null && string.IsNullOrEmpty(token))
        {
            return Problems.Unauthorized("Send the platform's X-Api-Key, or the escrow's access token as 'Authorization: Bearer <accessToken>'.");
        }
        if (caller is null && !IsWellFormedAccessToken(token))
        {
            // Refused before any grain is touched: a malformed token can open nothing, so it costs no activation.
            return Problems.Unauthorized("The access token does not open this escrow.");
        }
        if (!Guid.TryParse(id, out var escrowId))
        {
            return Problems.NotFound("No escrow has this id.");
        }
        var view = await grains.GetGrain<IEscrowGrain>(escrowId).GetAsync();
        // The escrow keeps the token's hash only: what a reader of the stored state has does not open it.
        if (caller is null && (view is null || !Escrow.Grains.Domain.TokenHash.OpensAccess(view.AccessTokenHash, token)))
        {
            // The same answer whether the escrow exists or not: a token proves nothing about other escrows.
            return Problems.Unauthorized("The access token does not open this escrow.");
        }
        if (view is null)
        {
            return Problems.NotFound("No escrow has this id.");
        }
        // The display name only (never the recipient's address): the sender's status page says to whom the message went.
        var recipient = await grains.GetGrain<IRecipientGrain>(view.RecipientId).GetAsync();
        return TypedResults.Ok(ToResponse(view, includeSecrets: false, includeHistory: true, forSender: caller is null) with { RecipientDisplayName = recipient?.DisplayName });
    }

    /// <summary>
    /// The detail of a history entry as the sender may read it. An operator's event (operator_*, dispute_resolved)
    /// carries the operator's free text (a reason typed in the console or the admin API): the sender sees that it
    /// happened, not what was written.
    /// </summary>
    public static string? SenderDetail(string evt, string? detail) => evt switch
    {
        _ when evt.StartsWith("operator_", StringComparison.Ordinal) || evt == "dispute_resolved" => null,
        // An operator's release is recorded as the reply it stands for, with the operator's reason as its detail.
        "reply_accepted" => detail is "email" or "platform" ? detail : null,
        _ => detail,
    };

    private static async Task<IResult> ReplyAsync(string id, HttpRequest request, IGrainFactory grains, TimeProvider clock)
    {
        var receivedAt = clock.GetUtcNow();
        if (!Guid.TryParse(id, out var escrowId))
        {
            return Problems.NotFound("No escrow has this id.");
        }
        ReplyBody? body = null;
        if (request.ContentLength is > 0 || request.Headers.TransferEncoding.Count > 0)
        {
            var (parsed, error) = await JsonBody.ReadAsync<ReplyBody>(request);
            if (parsed is null)
            {
                return error!;
            }
            body = parsed;
        }
        if (body?.Text is { Length: > ReplyTextLengthMax })
        {
            return Problems.Validation(new Dictionary<string, string[]> { ["text"] = [$"At most {ReplyTextLengthMax} characters."] });
        }
        var result = await grains.GetGrain<IEscrowGrain>(escrowId).AcceptReplyAsync(new ReplyReceived(receivedAt, "platform", body?.Text, request.HttpContext.Caller().KeyId));
        return result.Accepted
            ? TypedResults.Ok(ToResponse(result.View!, includeSecrets: false, includeHistory: true))
            : Problems.Rejection(result.Rejection!, escrowId);
    }

    private static Dictionary<string, string[]> Validate(CreateEscrowBody b, EscrowOptions options, out TimeSpan window)
    {
        var errors = new Dictionary<string, string[]>();
        window = default;
        if (!RecipientEndpoints.IsValidId(b.RecipientId))
        {
            errors["recipientId"] = ["The recipient's id: 1 to 64 letters, digits, '-' or '_'."];
        }
        if (!RecipientEndpoints.IsValidEmail(b.SenderEmail))
        {
            errors["senderEmail"] = ["A valid email address is required."];
        }
        var offered = string.Join(", ", options.EffectiveWindows.Select(w => Iso8601.Format(w.Duration)));
        var parsed = Iso8601.TryParseDuration(b.ResponseWindow, out var requested);
        window = requested;
        if (!parsed || options.EffectiveWindows.All(w => w.Duration != requested))
        {
            errors["responseWindow"] = [$"An ISO 8601 duration among the offered windows: {offered}."];
        }
        if (string.IsNullOrWhiteSpace(b.Subject) || b.Subject.Length > SubjectLengthMax || b.Subject.Any(char.IsControl))
        {
            errors["subject"] = [$"1 to {SubjectLengthMax} printable characters."];
        }
        if (b.Message is null || b.Message.Trim().Length < MessageLengthMin || b.Message.Length > MessageLengthMax)
        {
            errors["message"] = [$"{MessageLengthMin} to {MessageLengthMax} characters."];
        }
        if (b.PaymentMethodId is not null && !PaymentMethodPattern().IsMatch(b.PaymentMethodId))
        {
            errors["paymentMethodId"] = ["A Stripe payment method id such as pm_card_visa."];
        }
        return errors;
    }

    /// <summary>
    /// A hash of the request's meaning, so the same body under the same key is recognised as the same request. The
    /// payment method is not part of it: after a decline the same request with another card is the sender's retry.
    /// </summary>
    private static string RequestHash(CreateEscrowBody b) =>
        Convert.ToHexString(SHA256.HashData(JsonSerializer.SerializeToUtf8Bytes(new[] { b.RecipientId, b.SenderEmail, b.ResponseWindow, b.Subject, b.Message })));

    /// <param name="includeSecrets">The create's answer: the access token and the client secret.</param>
    /// <param name="forSender">
    /// The sender's own read (by access token): the client secret while the payment is still to be made, and no
    /// operator's free text. Nobody else is shown the client secret after the create.
    /// </param>
    public static EscrowResponse ToResponse(EscrowView v, bool includeSecrets, bool includeHistory, bool forSender = false) => new(
        v.Id, v.Status, v.RecipientId, v.AmountMinor, v.Currency, v.RecipientShareMinor, v.PlatformFeeMinor,
        Iso8601.Format(v.ResponseWindow), v.CreatedAt, v.ExpiresAt, v.ReplyDeadline, v.PaymentIntentId,
        includeSecrets || (forSender && v.Status == "awaiting_payment") ? v.ClientSecret : null,
        includeSecrets && v.AccessToken.Length > 0 ? v.AccessToken : null, v.TransferId,
        includeHistory ? v.History.Select(h => new HistoryResponse(h.Status, h.At, h.Event, h.AmountMinor, forSender ? SenderDetail(h.Event, h.Detail) : h.Detail)).ToList() : null,
        v.LastPaymentError, NeedsOperator: v.NeedsOperator, Dispute: v.DisputeId is { } dispute ? new DisputeResponse(dispute, v.DisputeStatus ?? "open") : null);

    /// <summary>
    /// An access token as the escrow makes them: its secret's id (4 hex digits) and a 256-bit MAC in unpadded base64url
    /// (43 characters); or, made before, the 43 characters alone (<see cref="EscrowTokens"/>).
    /// </summary>
    public static bool IsWellFormedAccessToken(string? token) =>
        token is { Length: EscrowTokens.AccessTokenLength or EscrowTokens.LegacyAccessTokenLength } && AccessTokenPattern().IsMatch(token);

    [GeneratedRegex("^([0-9a-f]{4})?[A-Za-z0-9_-]{43}$")]
    private static partial Regex AccessTokenPattern();

    [GeneratedRegex("^pm_[A-Za-z0-9_]{1,250}$")]
    private static partial Regex PaymentMethodPattern();
}
