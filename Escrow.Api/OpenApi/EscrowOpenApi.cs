using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Escrow.Api.OpenApi;

/// <summary>
/// The served OpenAPI document (/openapi/v1.json): only the public API and webhooks (not the dashboard, sandboxes or
/// docs), with security schemes, tag descriptions, request examples and the Retry-After header of 429 and 503.
/// Client generators (Kiota) and linters (Redocly) read it; a test checks both.
/// </summary>
public static class EscrowOpenApi
{
    private static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web);

    private static readonly Dictionary<ApiAuth, (string Id, OpenApiSecurityScheme Scheme)> Schemes = new()
    {
        [ApiAuth.PlatformKey] = ("platformKey", new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.ApiKey, In = ParameterLocation.Header, Name = "X-Api-Key",
            Description = "A platform API key (Api:PlatformKeys): the platform's web front end and back office.",
        }),
        [ApiAuth.AdminKey] = ("adminKey", new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.ApiKey, In = ParameterLocation.Header, Name = "X-Api-Key",
            Description = "An admin API key (Api:AdminKeys): operators. Accepted wherever a platform key is.",
        }),
        [ApiAuth.AccessToken] = ("accessToken", new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.Http, Scheme = "bearer",
            Description = "The escrow's accessToken, returned once by the create: opens that one escrow for its sender.",
        }),
        [ApiAuth.PostmarkBasic] = ("postmarkBasic", new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.Http, Scheme = "basic",
            Description = "The inbound webhook's HTTP Basic credentials (Postmark:InboundUsername and Postmark:InboundPassword).",
        }),
        [ApiAuth.StripeSignature] = ("stripeSignature", new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.ApiKey, In = ParameterLocation.Header, Name = "Stripe-Signature",
            Description = "Stripe's signature of the raw body with the endpoint's signing secret (Stripe:WebhookSecret or Stripe:ConnectWebhookSecret).",
        }),
    };

    private static readonly (string Name, string Description)[] Tags =
    [
        ("Recipients", "The people senders pay to reach: contact, pricing, revenue share, daily limit and Stripe Connect payout setup. Platform key."),
        ("Escrows", "Create an escrow (the sender's payment is held), read it, and accept the recipient's reply (which releases the money)."),
        ("Webhooks", "Called by Stripe (payment and Connect events) and Postmark (inbound replies, bounces); authenticated by signature or HTTP Basic."),
        ("Admin", "Operators: escrows by status or stuck, force release / refund / retry, alerts, circuit breaker, reconciliation. Admin key."),
        ("Onboarding", "Links e-mailed to recipients to set up their Stripe payouts; signed, no key."),
        ("Health", "Liveness and readiness probes."),
    ];

    public static IServiceCollection AddEscrowOpenApi(this IServiceCollection services) =>
        // Numbers are written as numbers; without this the document would say every integer may also be a string,
        // which generated clients turn into awkward union types. Request bodies are read with their own options.
        services.ConfigureHttpJsonOptions(o => o.SerializerOptions.NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.Strict).AddOpenApi(o =>
        {
            o.ShouldInclude = d => d.RelativePath is { } path && !path.StartsWith("dashboard", StringComparison.Ordinal)
                && !path.StartsWith("_sandbox", StringComparison.Ordinal) && !path.StartsWith("console", StringComparison.Ordinal);
            o.AddDocumentTransformer((document, _, _) =>
            {
                document.Info.Title = "Escrow API";
                document.Info.Description = "Guaranteed-response escrow: a sender pays to reach a recipient; the money is held until the recipient replies "
                    + "(released, the recipient paid through Stripe Connect) or the deadline passes (refunded). Errors are RFC 9457 problem details: "
                    + "400 names each invalid field in `errors`, 409 names the business rule in `rejection`. Money is an integer of minor units with an ISO 4217 currency.";
                foreach (var server in document.Servers ?? [])
                {
                    server.Url = server.Url?.TrimEnd('/');
                }
                document.Tags = new HashSet<OpenApiTag>(Tags.Select(t => new OpenApiTag { Name = t.Name, Description = t.Description }));
                return Task.CompletedTask;
            });
            o.AddOperationTransformer((operation, context, _) =>
            {
                var metadata = context.Description.ActionDescriptor.EndpointMetadata;
                ApplySecurity(operation, context.Document!, metadata.OfType<ApiAuthMetadata>().LastOrDefault());
                ApplyExample(operation, metadata.OfType<ApiExampleMetadata>().LastOrDefault());
                ApplyHeaders(operation, metadata.OfType<ApiHeaderMetadata>());
                ApplyRetryAfter(operation);
                return Task.CompletedTask;
            });
        });

    private static void ApplySecurity(OpenApiOperation operation, OpenApiDocument document, ApiAuthMetadata? auth)
    {
        if (auth is null)
        {
            return;
        }
        document.Components ??= new OpenApiComponents();
        document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
        operation.Security ??= [];
        if (auth.Accepted.Count == 0)
        {
            // An empty requirement is how OpenAPI says "no credentials needed" (the anonymous create).
            operation.Security.Add(new OpenApiSecurityRequirement());
        }
        foreach (var accepted in auth.Accepted)
        {
            var (id, scheme) = Schemes[accepted];
            document.Components.SecuritySchemes.TryAdd(id, scheme);
            operation.Security.Add(new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(id, document)] = [] });
        }
    }

    private static void ApplyExample(OpenApiOperation operation, ApiExampleMetadata? example)
    {
        if (example is null || operation.RequestBody?.Content is not { } content)
        {
            return;
        }
        foreach (var media in content.Values)
        {
            media.Example = JsonSerializer.SerializeToNode(example.RequestExample, example.RequestExample.GetType(), Web);
        }
    }

    private static void ApplyHeaders(OpenApiOperation operation, IEnumerable<ApiHeaderMetadata> headers)
    {
        foreach (var header in headers)
        {
            operation.Parameters ??= [];
            operation.Parameters.Add(new OpenApiParameter
            {
                Name = header.Name, In = ParameterLocation.Header, Required = header.Required, Description = header.Description,
                Schema = new OpenApiSchema { Type = JsonSchemaType.String, MinLength = 1, MaxLength = header.MaxLength },
            });
        }
    }

    private static void ApplyRetryAfter(OpenApiOperation operation)
    {
        foreach (var (status, response) in operation.Responses ?? [])
        {
            if (status is "429" or "503" && response is OpenApiResponse concrete)
            {
                concrete.Headers ??= new Dictionary<string, IOpenApiHeader>();
                concrete.Headers["Retry-After"] = new OpenApiHeader
                {
                    Description = "Seconds to wait before retrying the same request (with the same Idempotency-Key for a create).",
                    Schema = new OpenApiSchema { Type = JsonSchemaType.Integer },
                };
            }
        }
    }
}
