using Stripe;

namespace Escrow.Tests.Sandbox;

/// <summary>The sandbox refuses and expires what Stripe refuses and expires, so tests catch what Stripe would.</summary>
public sealed class StripeStrictnessTests
{
    [Fact]
    public async Task Events_of_a_connected_account_name_it_and_are_signed_with_the_connect_secret_only()
    {
        await using var host = await SandboxTestHost.StartAsync();
        var account = await host.CreateAccountAsync(enablePayouts: true);

        await Wait.UntilAsync(() => host.Receiver.AcceptedWithConnectSecret.Count >= 2, "account.updated and capability.updated delivered");
        var updated = Assert.Single(host.Receiver.Accepted, e => e.Type == "account.updated");
        var capability = Assert.Single(host.Receiver.Accepted, e => e.Type == "capability.updated");
        Assert.Equal(account.Id, updated.Account);
        Assert.Equal(account.Id, capability.Account);
        Assert.Contains(updated, host.Receiver.AcceptedWithConnectSecret);
        // The platform secret alone does not verify them.
        var json = host.Sandbox.GetEvent(updated.Id)!.Json;
        var header = StripeWebhookDeliveryService.SignatureHeader(SandboxTestHost.ConnectWebhookSecret, DateTimeOffset.UtcNow.ToUnixTimeSeconds(), json);
        Assert.Throws<StripeException>(() => EventUtility.ConstructEvent(json, header, SandboxTestHost.WebhookSecret));
        // A platform event carries no account and is signed with the platform secret.
        var pi = await host.AuthoriseAsync(1_000, "connect-sign-1", "g1");
        await Wait.UntilAsync(() => host.Receiver.Accepted.Any(e => e.Type == "payment_intent.amount_capturable_updated"), "platform event delivered");
        var platformEvent = host.Receiver.Accepted.First(e => e.Type == "payment_intent.amount_capturable_updated");
        Assert.Null(platformEvent.Account);
        Assert.DoesNotContain(platformEvent, host.Receiver.AcceptedWithConnectSecret);
        Assert.NotNull(pi);
    }

    [Fact]
    public async Task Account_links_need_refresh_and_return_urls_and_show_their_page_once()
    {
        await using var host = await SandboxTestHost.StartAsync();
        var account = await host.CreateAccountAsync(enablePayouts: false);
        var links = new AccountLinkService(host.Stripe);

        var noRefresh = await Assert.ThrowsAsync<StripeException>(() => links.CreateAsync(new AccountLinkCreateOptions
        {
            Account = account.Id, Type = "account_onboarding", ReturnUrl = "https://platform.example/return",
        }));
        var noReturn = await Assert.ThrowsAsync<StripeException>(() => links.CreateAsync(new AccountLinkCreateOptions
        {
            Account = account.Id, Type = "account_onboarding", RefreshUrl = "https://platform.example/refresh",
        }));
        var link = await links.CreateAsync(new AccountLinkCreateOptions
        {
            Account = account.Id, Type = "account_onboarding",
            RefreshUrl = "https://platform.example/refresh", ReturnUrl = "https://platform.example/return",
        });
        var path = new Uri(link.Url).PathAndQuery;
        using var first = await host.Http.GetAsync(path);
        using var second = await host.Http.GetAsync(path);

        Assert.Equal("parameter_missing", noRefresh.StripeError.Code);
        Assert.Equal("refresh_url", noRefresh.StripeError.Param);
        Assert.Equal("return_url", noReturn.StripeError.Param);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Contains(account.Id, await first.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Redirect, second.StatusCode);
        Assert.Equal("https://platform.example/refresh", second.Headers.Location?.ToString());
        Assert.Equal(300, link.ExpiresAt.Subtract(link.Created).TotalSeconds);
    }

    [Fact]
    public async Task An_account_link_opened_after_300_seconds_redirects_to_its_refresh_url()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var host = await SandboxTestHost.StartAsync(clock: clock);
        var account = await host.CreateAccountAsync(enablePayouts: false);
        var link = await new AccountLinkService(host.Stripe).CreateAsync(new AccountLinkCreateOptions
        {
            Account = account.Id, Type = "account_onboarding",
            RefreshUrl = "https://platform.example/refresh", ReturnUrl = "https://platform.example/return",
        });

        clock.Advance(TimeSpan.FromSeconds(300));
        using var expired = await host.Http.GetAsync(new Uri(link.Url).PathAndQuery);
        using var submitted = await host.Http.PostAsync(new Uri(link.Url).PathAndQuery, null);

        Assert.Equal(HttpStatusCode.Redirect, expired.StatusCode);
        Assert.Equal("https://platform.example/refresh", expired.Headers.Location?.ToString());
        Assert.Equal("https://platform.example/refresh", submitted.Headers.Location?.ToString());
        Assert.False(host.Sandbox.GetAccount(account.Id)!.PayoutsEnabled);
    }

    [Fact]
    public async Task An_account_in_another_country_needs_the_recipient_service_agreement_which_refuses_card_payments()
    {
        await using var host = await SandboxTestHost.StartAsync(o => o.PlatformCountry = "FR");
        var accounts = new AccountService(host.Stripe);
        AccountCreateOptions Express(string country, string? agreement, bool cardPayments) => new()
        {
            Type = "express", Country = country,
            Capabilities = new AccountCapabilitiesOptions
            {
                Transfers = new AccountCapabilitiesTransfersOptions { Requested = true },
                CardPayments = cardPayments ? new AccountCapabilitiesCardPaymentsOptions { Requested = true } : null,
            },
            TosAcceptance = agreement is null ? null : new AccountTosAcceptanceOptions { ServiceAgreement = agreement },
        };

        var crossBorderFull = await Assert.ThrowsAsync<StripeException>(() => accounts.CreateAsync(Express("US", null, cardPayments: false)));
        var recipientWithCards = await Assert.ThrowsAsync<StripeException>(() => accounts.CreateAsync(Express("US", "recipient", cardPayments: true)));
        var crossBorder = await accounts.CreateAsync(Express("US", "recipient", cardPayments: false));
        var domestic = await accounts.CreateAsync(Express("FR", null, cardPayments: false));

        Assert.Equal("tos_acceptance[service_agreement]", crossBorderFull.StripeError.Param);
        Assert.Equal(HttpStatusCode.BadRequest, recipientWithCards.HttpStatusCode);
        Assert.Equal("recipient", host.Sandbox.GetAccount(crossBorder.Id)!.ServiceAgreement);
        Assert.Equal(["transfers"], host.Sandbox.GetAccount(crossBorder.Id)!.Capabilities.Keys);
        Assert.Equal("full", host.Sandbox.GetAccount(domestic.Id)!.ServiceAgreement);
    }

    [Theory]
    [MemberData(nameof(StripeMinimumCharges.HighestRefused), MemberType = typeof(StripeMinimumCharges))]
    public async Task A_payment_intent_below_the_minimum_charge_is_refused_with_amount_too_small(string code, long amount)
    {
        await using var host = await SandboxTestHost.StartAsync();
        var intents = new PaymentIntentService(host.Stripe);
        var currency = code.ToLowerInvariant(); // as Stripe.net callers write it

        var refused = await Assert.ThrowsAsync<StripeException>(() => intents.CreateAsync(new PaymentIntentCreateOptions { Amount = amount, Currency = currency }));
        var accepted = await intents.CreateAsync(new PaymentIntentCreateOptions { Amount = amount + 1, Currency = currency });

        Assert.Equal("amount_too_small", refused.StripeError.Code);
        Assert.Equal("amount", refused.StripeError.Param);
        Assert.Equal(amount + 1, accepted.Amount);
        Assert.Single(host.Sandbox.PaymentIntents);
    }

    [Fact]
    public async Task A_held_authorisation_expires_after_seven_days_of_the_sandbox_clock()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var host = await SandboxTestHost.StartAsync(clock: clock);
        var held = await host.AuthoriseAsync(1_000, "expiry-1", "g-expiry");

        clock.Advance(TimeSpan.FromDays(7) - TimeSpan.FromSeconds(2));
        Assert.Equal("requires_capture", host.Sandbox.GetPaymentIntent(held.Id)!.Status);
        clock.Advance(TimeSpan.FromSeconds(2));

        var expired = host.Sandbox.GetPaymentIntent(held.Id)!;
        Assert.Equal("canceled", expired.Status);
        Assert.Equal("expired", expired.CancellationReason);
        Assert.Single(host.Sandbox.EventsOfType("payment_intent.canceled"), e => e.ObjectId == held.Id);
        var capture = await Assert.ThrowsAsync<StripeException>(() => new PaymentIntentService(host.Stripe).CaptureAsync(held.Id, new PaymentIntentCaptureOptions()));
        Assert.Equal("payment_intent_unexpected_state", capture.StripeError.Code);
    }

    [Fact]
    public async Task The_expire_control_expires_a_held_authorisation_now_and_refuses_anything_else()
    {
        await using var host = await SandboxTestHost.StartAsync();
        var held = await host.AuthoriseAsync(1_000, "expire-now-1", "g-expire");

        using var expired = await host.Http.PostAsync($"/_sandbox/stripe/payment_intents/{held.Id}/expire", null);
        using var again = await host.Http.PostAsync($"/_sandbox/stripe/payment_intents/{held.Id}/expire", null);
        using var unknown = await host.Http.PostAsync("/_sandbox/stripe/payment_intents/pi_nope/expire", null);

        Assert.Equal(HttpStatusCode.OK, expired.StatusCode);
        var body = await expired.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("canceled", body.GetProperty("status").GetString());
        Assert.Equal("expired", body.GetProperty("cancellation_reason").GetString());
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Single(host.Sandbox.EventsOfType("payment_intent.canceled"));
    }

    [Fact]
    public async Task Past_the_rate_limit_in_one_calendar_second_the_api_answers_429_and_the_stats_count_it()
    {
        await using var host = await SandboxTestHost.StartAsync(o => o.RateLimitPerSecond = 3);
        using var reset = await host.Http.PostAsync("/_sandbox/stripe/reset", null);
        var stripe = host.Server.CreateClient();
        stripe.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "sk_test_x");

        // Ten requests at once: whichever calendar seconds they fall in, at most 3 per second are answered.
        var answers = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => stripe.GetAsync("/_sandbox/stripe/v1/events")));
        var stats = await host.Http.GetFromJsonAsync<JsonElement>("/_sandbox/stripe/stats");

        var limited = answers.Count(a => a.StatusCode == HttpStatusCode.TooManyRequests);
        Assert.InRange(limited, 1, 7);
        Assert.All(answers.Where(a => a.StatusCode == HttpStatusCode.TooManyRequests), a => Assert.Equal("1", a.Headers.RetryAfter?.ToString()));
        Assert.Equal(10, stats.GetProperty("requests").GetInt64());
        Assert.Equal(limited, stats.GetProperty("rateLimited").GetInt64());
        Assert.InRange(stats.GetProperty("maxRequestsInOneSecond").GetInt32(), 4, 10);
        using var resetAgain = await host.Http.PostAsync("/_sandbox/stripe/reset", null);
        Assert.Equal(0, (await host.Http.GetFromJsonAsync<JsonElement>("/_sandbox/stripe/stats")).GetProperty("requests").GetInt64());
    }

    [Fact]
    public async Task Webhook_endpoints_are_created_listed_and_deleted_like_stripe()
    {
        await using var host = await SandboxTestHost.StartAsync();
        var endpoints = new WebhookEndpointService(host.Stripe);

        var platform = await endpoints.CreateAsync(new WebhookEndpointCreateOptions
        {
            Url = "https://escrow.example/webhooks/stripe", EnabledEvents = ["payment_intent.canceled", "transfer.created"], ApiVersion = "2025-01-27.acacia",
        });
        var connect = await endpoints.CreateAsync(new WebhookEndpointCreateOptions
        {
            Url = "https://escrow.example/webhooks/stripe", EnabledEvents = ["account.updated"], Connect = true,
        });
        var missingEvents = await Assert.ThrowsAsync<StripeException>(() => endpoints.CreateAsync(new WebhookEndpointCreateOptions { Url = "https://x.example/hook" }));
        var listed = await endpoints.ListAsync();
        await endpoints.DeleteAsync(platform.Id);
        var afterDelete = await endpoints.ListAsync();

        Assert.Equal(["payment_intent.canceled", "transfer.created"], platform.EnabledEvents);
        Assert.Equal("2025-01-27.acacia", platform.ApiVersion);
        Assert.True(host.Sandbox.WebhookEndpoints.Single(e => e.Id == connect.Id).Connect);
        Assert.Equal("enabled_events", missingEvents.StripeError.Param);
        Assert.Equal([connect.Id, platform.Id], listed.Data.Select(e => e.Id));
        Assert.Equal([connect.Id], afterDelete.Data.Select(e => e.Id));
    }
}
