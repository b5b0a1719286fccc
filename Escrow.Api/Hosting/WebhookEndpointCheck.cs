using Stripe;

namespace Escrow.Api.Hosting;

/// <summary>
/// Stripe renders each event in its endpoint's API version, and sends a connected account's events only to a Connect
/// endpoint. At start with a real key, the account's webhook endpoints are listed: two enabled ones (the platform's and
/// the Connect one) must point to Api:PublicBaseUrl + /webhooks/stripe, in an API version Stripe.net reads, with every
/// event this service acts on. Anything else is logged as a warning and raised as a webhook_endpoint_misconfigured alert.
/// </summary>
public sealed partial class WebhookEndpointCheck(IStripeClient stripe, IOptions<PublicLinkOptions> links,
    IEscrowStore store, TimeProvider clock, ILogger<WebhookEndpointCheck> logger)
{
    public const string AlertKind = "webhook_endpoint_misconfigured";

    /// <summary>The events the service acts on (StripeWebhookEndpoints' routers), over both endpoints together.</summary>
    public static readonly IReadOnlyList<string> RequiredEvents =
    [
        "payment_intent.amount_capturable_updated", "payment_intent.payment_failed", "payment_intent.canceled",
        "transfer.created", "transfer.reversed", "charge.dispute.created", "charge.dispute.closed", "account.updated",
    ];

    /// <summary>What is wrong with the endpoints (empty when nothing is); each problem is logged and the list alerted once.</summary>
    public async Task<IReadOnlyList<string>> CheckAsync(CancellationToken cancellationToken = default)
    {
        var problems = new List<string>();
        if (links.Value.PublicBaseUrl is not { } baseUrl)
        {
            problems.Add("Api:PublicBaseUrl is not set, so no webhook endpoint can be checked against it.");
        }
        else
        {
            var expected = baseUrl.TrimEnd('/') + "/webhooks/stripe";
            var ours = new List<WebhookEndpoint>();
            await foreach (var endpoint in new WebhookEndpointService(stripe).ListAutoPagingAsync(new WebhookEndpointListOptions { Limit = 100 }, null, cancellationToken))
            {
                if (string.Equals(endpoint.Url?.TrimEnd('/'), expected, StringComparison.OrdinalIgnoreCase) && endpoint.Status == "enabled")
                {
                    ours.Add(endpoint);
                }
            }
            var compatible = ours.Where(e => e.ApiVersion is { } v && EventUtility.IsCompatibleApiVersion(v)).ToList();
            foreach (var stale in ours.Except(compatible))
            {
                problems.Add($"Webhook endpoint {stale.Id} renders events in API version {stale.ApiVersion ?? "(the account's default)"}; Stripe.net expects {StripeConfiguration.ApiVersion}: create it again with that version.");
            }
            if (compatible.Count < 2)
            {
                problems.Add($"{compatible.Count} enabled webhook endpoint(s) with API version {StripeConfiguration.ApiVersion} point to {expected}: two are needed, the platform's and a Connect endpoint (connect=true) for account.updated.");
            }
            var enabled = compatible.SelectMany(e => e.EnabledEvents ?? []).ToHashSet(StringComparer.Ordinal);
            var missing = enabled.Contains("*") ? [] : RequiredEvents.Where(e => !enabled.Contains(e)).ToList();
            if (missing.Count > 0)
            {
                problems.Add($"Events not enabled on the webhook endpoints of {expected}: {string.Join(", ", missing)}.");
            }
        }
        foreach (var problem in problems)
        {
            LogMisconfigured(logger, problem);
        }
        if (problems.Count > 0)
        {
            await store.RaiseAlertAsync(new NewAlert(Grains.Domain.AlertKind.WebhookEndpointMisconfigured, null, AlertKind, string.Join(" ", problems), clock.GetUtcNow()), cancellationToken);
        }
        return problems;
    }

    /// <summary>Runs the check once at start, with a real Stripe key only (the sandbox delivers to this process itself).</summary>
    public sealed class AtStart(WebhookEndpointCheck check, IOptions<StripeOptions> stripeOptions, ILogger<WebhookEndpointCheck> logger) : BackgroundService
    {
        protected override async Task ExecuteAsync(CancellationToken stoppingToken)
        {
            if (stripeOptions.Value.IsSandbox)
            {
                return;
            }
            try
            {
                await check.CheckAsync(stoppingToken);
            }
            catch (Exception e) when (e is StripeException or HttpRequestException or Npgsql.NpgsqlException or TimeoutException)
            {
                LogCheckFailed(logger, e);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Stripe webhook endpoints: {Problem}")]
    private static partial void LogMisconfigured(ILogger logger, string problem);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Stripe webhook endpoints could not be checked at start")]
    private static partial void LogCheckFailed(ILogger logger, Exception e);
}
