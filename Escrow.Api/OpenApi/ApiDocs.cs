namespace Escrow.Api.OpenApi;

/// <summary>
/// The shape of every refusal on the wire (RFC 9457 problem details), written down for the OpenAPI document; the
/// handlers build it through <see cref="Problems"/>. Only the members a refusal needs are present.
/// </summary>
/// <param name="Type">A URI naming the kind of problem; for a business rejection, .../problems/{rejection}.</param>
/// <param name="Title">A short summary; for a business rejection, the rejection's name.</param>
/// <param name="Status">The HTTP status code.</param>
/// <param name="Detail">What is wrong and how to fix it, for a person.</param>
/// <param name="Rejection">The business rule that refused the request (snake_case), e.g. reply_too_late, daily_limit_reached.</param>
/// <param name="Errors">Field name to messages, for 400 responses about the body's fields.</param>
/// <param name="EscrowId">The escrow the refusal is about, when there is one (e.g. a declined card keeps its escrow).</param>
/// <param name="EscrowStatus">That escrow's status, when the refusal reports it.</param>
public sealed record ApiProblem(
    string Title,
    int Status,
    string Detail,
    string? Type = null,
    string? Rejection = null,
    IReadOnlyDictionary<string, string[]>? Errors = null,
    Guid? EscrowId = null,
    string? EscrowStatus = null);

/// <summary>What a webhook answers once the event or message is handled (or recognised as a duplicate).</summary>
/// <param name="Received">Always true.</param>
/// <param name="Outcome">What was done with it, e.g. routed, ignored, reply_accepted.</param>
/// <param name="Duplicate">True when this event or message was already processed; nothing was done again.</param>
public sealed record WebhookAck(bool Received, string? Outcome = null, bool? Duplicate = null);

/// <summary>A Stripe event as Stripe posts it (only the members the service reads are listed).</summary>
/// <param name="Id">The event id (evt_...), the de-duplication key.</param>
/// <param name="Object">Always "event".</param>
/// <param name="Type">The event type, e.g. payment_intent.amount_capturable_updated or account.updated.</param>
/// <param name="ApiVersion">The API version the event was rendered with.</param>
/// <param name="Account">The connected account (acct_...) for a Connect event.</param>
/// <param name="Data">The event's data; data.object is the Stripe object concerned.</param>
public sealed record StripeEventBody(string Id, string Object, string Type, StripeEventData Data, string? ApiVersion = null, string? Account = null);

/// <param name="Object">The Stripe object the event is about (a PaymentIntent, an Account, ...).</param>
public sealed record StripeEventData(System.Text.Json.JsonElement Object);

/// <summary>How a caller proves who it is; an operation lists the ones it accepts (any one of them is enough).</summary>
public enum ApiAuth
{
    PlatformKey,
    AdminKey,
    AccessToken,
    PostmarkBasic,
    StripeSignature,
}

/// <summary>Endpoint metadata read by the OpenAPI document: the credentials an operation accepts.</summary>
public sealed record ApiAuthMetadata(IReadOnlyList<ApiAuth> Accepted);

/// <summary>Endpoint metadata: the example request body shown in the OpenAPI document.</summary>
public sealed record ApiExampleMetadata(object RequestExample);

/// <summary>Endpoint metadata: a request header the handler reads itself, for the OpenAPI document.</summary>
public sealed record ApiHeaderMetadata(string Name, bool Required, int MaxLength, string Description);

public static class ApiDocs
{
    public const string ProblemJson = "application/problem+json";

    /// <summary>Operation id (also the endpoint's name), summary and description in one call.</summary>
    public static RouteHandlerBuilder Describe(this RouteHandlerBuilder builder, string operationId, string summary, string description) =>
        builder.WithName(operationId).WithSummary(summary).WithDescription(description);

    /// <summary>The problem-details responses an operation can give, each with the <see cref="ApiProblem"/> schema.</summary>
    public static RouteHandlerBuilder Problems(this RouteHandlerBuilder builder, params int[] statuses)
    {
        foreach (var status in statuses)
        {
            builder.Produces<ApiProblem>(status, ProblemJson);
        }
        return builder;
    }

    /// <summary>A JSON request body of type <typeparamref name="T"/> with its example; 400, 413 and 415 come with any body.</summary>
    public static RouteHandlerBuilder JsonBody<T>(this RouteHandlerBuilder builder, T example, bool optional = false) where T : notnull =>
        builder.Accepts<T>(optional, "application/json").WithMetadata(new ApiExampleMetadata(example))
            .Problems(StatusCodes.Status400BadRequest, StatusCodes.Status413PayloadTooLarge, StatusCodes.Status415UnsupportedMediaType);

    public static RouteHandlerBuilder Header(this RouteHandlerBuilder builder, string name, bool required, int maxLength, string description) =>
        builder.WithMetadata(new ApiHeaderMetadata(name, required, maxLength, description));

    /// <summary>
    /// A provider's webhook: a POST under the Webhooks tag, outside antiforgery (the provider authenticates it), with the
    /// provider's body and a <see cref="WebhookAck"/>; 503 while storage is down, which makes the provider retry.
    /// </summary>
    public static RouteHandlerBuilder MapWebhook<T>(this IEndpointRouteBuilder app, string path, Delegate handler, ApiAuth auth, T example,
        string operationId, string summary, string description) where T : notnull =>
        app.MapPost(path, handler).WithTags("Webhooks").DisableAntiforgery()
            .Describe(operationId, summary, description)
            .Authenticated(auth)
            .JsonBody(example)
            .Produces<WebhookAck>()
            .Problems(StatusCodes.Status503ServiceUnavailable);

    public static TBuilder Authenticated<TBuilder>(this TBuilder builder, params ApiAuth[] accepted) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new ApiAuthMetadata(accepted));
}
