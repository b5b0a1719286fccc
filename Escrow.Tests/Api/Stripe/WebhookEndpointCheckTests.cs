using Escrow.Api.Hosting;
using Stripe;

namespace Escrow.Tests.Api.Stripe;

/// <summary>The start-up check of the account's webhook endpoints (GET /v1/webhook_endpoints), against the sandbox's list.</summary>
public sealed class WebhookEndpointCheckTests
{
    private const string Url = EscrowApiFactory.PublicBaseUrl + "/webhooks/stripe";

    private static readonly List<string> PlatformEvents =
    [
        "payment_intent.amount_capturable_updated", "payment_intent.payment_failed", "payment_intent.canceled",
        "transfer.created", "transfer.reversed", "charge.dispute.created", "charge.dispute.closed",
    ];

    [Fact]
    public async Task No_endpoint_for_the_public_url_raises_a_webhook_endpoint_misconfigured_alert()
    {
        await using var app = Start();
        await Endpoints(app).CreateAsync(new WebhookEndpointCreateOptions { Url = "https://elsewhere.example/webhooks/stripe", EnabledEvents = ["*"], ApiVersion = StripeConfiguration.ApiVersion });

        var problems = await app.Services.GetRequiredService<WebhookEndpointCheck>().CheckAsync();

        Assert.Contains(problems, p => p.Contains("0 enabled webhook endpoint(s)", StringComparison.Ordinal));
        Assert.Single(await app.AlertsAsync(), a => a.GetProperty("kind").GetString() == WebhookEndpointCheck.AlertKind);
    }

    [Fact]
    public async Task Both_endpoints_with_the_expected_version_and_events_pass_and_raise_nothing()
    {
        await using var app = Start();
        await Endpoints(app).CreateAsync(new WebhookEndpointCreateOptions { Url = Url, EnabledEvents = PlatformEvents, ApiVersion = StripeConfiguration.ApiVersion });
        await Endpoints(app).CreateAsync(new WebhookEndpointCreateOptions { Url = Url, EnabledEvents = ["account.updated"], Connect = true, ApiVersion = StripeConfiguration.ApiVersion });

        var problems = await app.Services.GetRequiredService<WebhookEndpointCheck>().CheckAsync();

        Assert.Empty(problems);
        Assert.DoesNotContain(await app.AlertsAsync(), a => a.GetProperty("kind").GetString() == WebhookEndpointCheck.AlertKind);
    }

    [Fact]
    public async Task An_endpoint_in_an_old_api_version_or_without_account_updated_is_reported()
    {
        await using var app = Start();
        await Endpoints(app).CreateAsync(new WebhookEndpointCreateOptions { Url = Url, EnabledEvents = PlatformEvents, ApiVersion = StripeConfiguration.ApiVersion });
        var old = await Endpoints(app).CreateAsync(new WebhookEndpointCreateOptions { Url = Url, EnabledEvents = ["account.updated"], Connect = true, ApiVersion = "2020-08-27" });

        var problems = await app.Services.GetRequiredService<WebhookEndpointCheck>().CheckAsync();

        Assert.Contains(problems, p => p.Contains(old.Id, StringComparison.Ordinal) && p.Contains("2020-08-27", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("account.updated", StringComparison.Ordinal) && p.StartsWith("Events not enabled", StringComparison.Ordinal));
        Assert.Single(await app.AlertsAsync(), a => a.GetProperty("kind").GetString() == WebhookEndpointCheck.AlertKind);
    }

    private static EscrowApiFactory Start()
    {
        var app = new EscrowApiFactory();
        _ = app.Server;
        return app;
    }

    private static WebhookEndpointService Endpoints(EscrowApiFactory app) => new(app.Services.GetRequiredService<IStripeClient>());
}
