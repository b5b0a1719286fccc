using System.Text.RegularExpressions;
using ContractHelpers = Escrow.Tests.Api.Contract.Contract;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Options;

namespace Escrow.Tests.Api.Stripe;

/// <summary>
/// Connect as on the real Stripe: e-mailed /onboarding links that outlive Stripe's single-use account links,
/// connected-account events trusted only with the Connect secret, transfers-only Express accounts by country.
/// </summary>
public sealed partial class ConnectOnboardingTests
{
    [Fact]
    public async Task Payout_setup_completes_through_the_emailed_onboarding_link_after_the_stripe_link_expired_and_account_updated_arrives_signed_with_the_connect_secret()
    {
        await using var app = Start();
        var recipient = await app.NewRecipientAsync();
        var escrow = await app.CreateHeldEscrowAsync(recipient);
        var id = escrow.Id();
        Assert.Equal(HttpStatusCode.OK, (await app.ReplyAsync(id)).StatusCode);
        await app.WaitForStatusAsync(id, "pending_user_setup");

        // The e-mail carries the service's own link, on Api:PublicBaseUrl, not a Stripe URL.
        var mail = await Eventually.UntilAsync(() => Task.FromResult(app.Postmark.Outbox.FirstOrDefault(m => m.Tag == "pending-payout-setup")), m => m is not null, "payout setup e-mail");
        var emailed = new Uri(OnboardingUrl().Match(mail!.TextBody!).Value);
        Assert.Equal(EscrowApiFactory.PublicBaseUrl, emailed.GetLeftPart(UriPartial.Authority));
        Assert.DoesNotContain("_sandbox", mail.TextBody!, StringComparison.Ordinal);
        var browser = Browser(app);

        // Opened once: a fresh Stripe account link; the recipient leaves the page without finishing.
        var firstVisit = await browser.GetAsync(emailed.PathAndQuery);
        Assert.Equal(HttpStatusCode.SeeOther, firstVisit.StatusCode);
        var stripeLink = firstVisit.Headers.Location!;
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync(stripeLink.PathAndQuery)).StatusCode);

        // Ten minutes later Stripe's link is dead (used, and past its 300 s): it sends the browser to our refresh route.
        app.Clock.Advance(TimeSpan.FromMinutes(10));
        var deadLink = await browser.GetAsync(stripeLink.PathAndQuery);
        Assert.Equal(HttpStatusCode.Redirect, deadLink.StatusCode);
        var refresh = deadLink.Headers.Location!;
        Assert.StartsWith($"{EscrowApiFactory.PublicBaseUrl}/onboarding/{recipient}/refresh?t=", refresh.ToString(), StringComparison.Ordinal);
        var refreshed = await browser.GetAsync(refresh.PathAndQuery);
        Assert.Equal(HttpStatusCode.SeeOther, refreshed.StatusCode);
        Assert.NotEqual(stripeLink, refreshed.Headers.Location);

        // The e-mailed link itself still works, and this time the recipient completes the form.
        var again = await browser.GetAsync(emailed.PathAndQuery);
        Assert.Equal(HttpStatusCode.SeeOther, again.StatusCode);
        var freshLink = again.Headers.Location!;
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync(freshLink.PathAndQuery)).StatusCode);
        var completed = await browser.PostAsync(freshLink.PathAndQuery, null);
        Assert.Equal(HttpStatusCode.Redirect, completed.StatusCode);
        var done = completed.Headers.Location!;
        Assert.StartsWith($"{EscrowApiFactory.PublicBaseUrl}/onboarding/{recipient}/done?t=", done.ToString(), StringComparison.Ordinal);

        // account.updated, an event of the connected account, is delivered signed with the Connect secret and applied.
        await app.WaitForStatusAsync(id, "released");
        var accountId = (await app.GetRecipientAsync(recipient)).GetProperty("stripeAccountId").GetString()!;
        var updated = Assert.Single(app.Stripe.EventsOfType("account.updated"));
        Assert.Equal(accountId, updated.Account);
        Assert.True(await app.Services.GetRequiredService<IEscrowStore>().IsWebhookProcessedAsync("stripe", updated.Id));
        Assert.Equal(accountId, Assert.Single(app.TransfersOf(id)).Destination);

        var donePage = await browser.GetAsync(done.PathAndQuery);
        Assert.Equal(HttpStatusCode.OK, donePage.StatusCode);
        Assert.Contains("Payouts ready", await donePage.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_connected_account_event_signed_with_the_platform_secret_answers_400_and_changes_nothing()
    {
        await using var app = Start();
        var recipient = await app.NewRecipientAsync();
        var accountId = await app.CreateAccountAsync(recipient);
        var sandboxOptions = app.Services.GetRequiredService<IOptions<SandboxOptions>>().Value;
        sandboxOptions.DeliverWebhooks = false;
        Assert.NotNull(app.Stripe.EnablePayouts(accountId));
        var updated = app.Stripe.EventsOfType("account.updated").Single();

        var forged = await app.PostStripeEventAsync(updated.Json, ContractHelpers.StripeSignature(updated.Json, app.UnixNow(), EscrowApiFactory.WebhookSecret));
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        Assert.False((await app.GetRecipientAsync(recipient)).GetProperty("payoutsEnabled").GetBoolean());
        Assert.False(await app.Services.GetRequiredService<IEscrowStore>().IsWebhookProcessedAsync("stripe", updated.Id));

        var genuine = await app.PostStripeEventAsync(updated.Json, ContractHelpers.StripeSignature(updated.Json, app.UnixNow(), EscrowApiFactory.ConnectWebhookSecret));
        Assert.Equal(HttpStatusCode.OK, genuine.StatusCode);
        Assert.True((await app.GetRecipientAsync(recipient)).GetProperty("payoutsEnabled").GetBoolean());
    }

    [Fact]
    public async Task Either_secret_of_a_rotated_list_verifies_and_an_account_updated_without_account_changes_no_recipient()
    {
        await using var app = Start(new Dictionary<string, string?>
        {
            ["Stripe:ConnectWebhookSecret"] = $"whsec_old_connect_secret, {EscrowApiFactory.ConnectWebhookSecret}",
        });
        var recipient = await app.NewRecipientAsync();
        var accountId = await app.CreateAccountAsync(recipient);
        app.Services.GetRequiredService<IOptions<SandboxOptions>>().Value.DeliverWebhooks = false;
        app.Stripe.EnablePayouts(accountId);
        var updated = app.Stripe.EventsOfType("account.updated").Single();

        // The platform's own account.updated (no account field) is acknowledged, and no recipient changes.
        var platformOwn = JsonNodeWithout(updated.Json, "account");
        var acknowledged = await app.PostStripeEventAsync(platformOwn, ContractHelpers.StripeSignature(platformOwn, app.UnixNow(), EscrowApiFactory.WebhookSecret));
        Assert.Equal(HttpStatusCode.OK, acknowledged.StatusCode);
        Assert.False((await app.GetRecipientAsync(recipient)).GetProperty("payoutsEnabled").GetBoolean());

        var withOldSecret = await app.PostStripeEventAsync(updated.Json, ContractHelpers.StripeSignature(updated.Json, app.UnixNow(), "whsec_old_connect_secret"));
        Assert.Equal(HttpStatusCode.OK, withOldSecret.StatusCode);
        Assert.True((await app.GetRecipientAsync(recipient)).GetProperty("payoutsEnabled").GetBoolean());
    }

    [Fact]
    public async Task The_onboarding_routes_answer_403_to_a_missing_tampered_foreign_or_expired_token()
    {
        await using var app = Start();
        var recipient = LifecycleApp.NewRecipientId();
        var other = LifecycleApp.NewRecipientId();
        await app.PutRecipientAsync(recipient);
        await app.PutRecipientAsync(other);
        var link = await (await app.Platform().PostAsync($"/v1/recipients/{recipient}/onboarding-link", null)).Content.ReadFromJsonAsync<JsonElement>();
        var publicUrl = new Uri(link.GetProperty("publicUrl").GetString()!);
        var token = Uri.UnescapeDataString(publicUrl.Query["?t=".Length..]);
        var browser = Browser(app);
        var linksBefore = app.Stripe.AccountLinks.Count;

        foreach (var route in new[] { "", "/refresh", "/done" })
        {
            Assert.Equal(HttpStatusCode.Forbidden, (await browser.GetAsync($"/onboarding/{recipient}{route}")).StatusCode);
            Assert.Equal(HttpStatusCode.Forbidden, (await browser.GetAsync($"/onboarding/{recipient}{route}?t={Uri.EscapeDataString(Tamper(token))}")).StatusCode);
            Assert.Equal(HttpStatusCode.Forbidden, (await browser.GetAsync($"/onboarding/{other}{route}?t={Uri.EscapeDataString(token)}")).StatusCode);
        }
        Assert.Equal(HttpStatusCode.SeeOther, (await browser.GetAsync(publicUrl.PathAndQuery)).StatusCode);
        app.Clock.Advance(TimeSpan.FromDays(14) + TimeSpan.FromSeconds(1));
        var expired = await browser.GetAsync(publicUrl.PathAndQuery);

        Assert.Equal(HttpStatusCode.Forbidden, expired.StatusCode);
        Assert.Contains("not valid", await expired.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(linksBefore + 1, app.Stripe.AccountLinks.Count);
    }

    [Fact]
    public async Task The_onboarding_link_api_returns_a_fresh_stripe_link_and_the_public_url_built_from_the_public_base_url_not_the_host_header()
    {
        await using var app = Start();
        var recipient = await app.NewRecipientAsync();
        var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/recipients/{recipient}/onboarding-link");
        request.Headers.Host = "attacker.example";

        var response = await app.Platform().SendAsync(request);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith($"{EscrowApiFactory.PublicBaseUrl}/onboarding/{recipient}?t=", body.GetProperty("publicUrl").GetString(), StringComparison.Ordinal);
        Assert.Contains("/connect/onboarding/acctlink_", body.GetProperty("url").GetString(), StringComparison.Ordinal);
        var stripeLink = app.Stripe.AccountLinks.Last();
        Assert.StartsWith($"{EscrowApiFactory.PublicBaseUrl}/onboarding/{recipient}/refresh?t=", stripeLink.RefreshUrl, StringComparison.Ordinal);
        Assert.StartsWith($"{EscrowApiFactory.PublicBaseUrl}/onboarding/{recipient}/done?t=", stripeLink.ReturnUrl, StringComparison.Ordinal);
        Assert.DoesNotContain("attacker", body.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_recipient_abroad_gets_a_transfers_only_account_under_the_recipient_agreement_and_is_paid_once_transfers_are_active()
    {
        await using var app = Start();
        var abroad = LifecycleApp.NewRecipientId();
        var home = LifecycleApp.NewRecipientId();
        var put = await app.Platform().PutAsJsonAsync($"/v1/recipients/{abroad}", new { email = "us@example.com", displayName = "Sam", basePriceMinor = 1_000, currency = "EUR", country = "US" });
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        Assert.Equal("US", (await put.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("country").GetString());
        await app.PutRecipientAsync(home);
        var badCountry = await app.Platform().PutAsJsonAsync($"/v1/recipients/{home}", new { email = "x@example.com", displayName = "X", basePriceMinor = 1_000, currency = "EUR", country = "XX" });
        Assert.Equal(HttpStatusCode.BadRequest, badCountry.StatusCode);

        var abroadAccount = app.Stripe.GetAccount(await app.CreateAccountAsync(abroad))!;
        var homeAccount = app.Stripe.GetAccount(await app.CreateAccountAsync(home))!;
        Assert.Equal(("US", "recipient"), (abroadAccount.Country, abroadAccount.ServiceAgreement));
        Assert.Equal(("FR", "full"), (homeAccount.Country, homeAccount.ServiceAgreement));
        Assert.Equal(["transfers"], abroadAccount.Capabilities.Keys);
        Assert.Equal(["transfers"], homeAccount.Capabilities.Keys);
        Assert.Equal("FR", (await app.GetRecipientAsync(home)).GetProperty("country").GetString());

        // Transfers active while payouts to the bank still wait: the recipient can be paid.
        var escrow = await app.CreateHeldEscrowAsync(abroad);
        Assert.Equal(HttpStatusCode.OK, (await app.ReplyAsync(escrow.Id())).StatusCode);
        await app.WaitForStatusAsync(escrow.Id(), "pending_user_setup");
        Assert.NotNull(app.Stripe.EnablePayouts(abroadAccount.Id, payoutsEnabled: false));
        await app.WaitForStatusAsync(escrow.Id(), "released");
        Assert.Equal(abroadAccount.Id, Assert.Single(app.TransfersOf(escrow.Id())).Destination);
        Assert.True((await app.GetRecipientAsync(abroad)).GetProperty("payoutsEnabled").GetBoolean());
    }

    private static EscrowApiFactory Start(IDictionary<string, string?>? settings = null)
    {
        var app = new EscrowApiFactory(settings: settings);
        _ = app.Server;
        return app;
    }

    /// <summary>A browser that does not follow redirects, so each hop can be checked.</summary>
    private static HttpClient Browser(EscrowApiFactory app) =>
        app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });

    private static string Tamper(string token) => token[..^1] + (token[^1] == 'A' ? 'B' : 'A');

    private static string JsonNodeWithout(string json, string property)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(json)!.AsObject();
        node.Remove(property);
        node["id"] = "evt_platform_" + Guid.NewGuid().ToString("N");
        return node.ToJsonString();
    }

    [GeneratedRegex(@"https://escrow\.test/onboarding/\S+")]
    private static partial Regex OnboardingUrl();
}
