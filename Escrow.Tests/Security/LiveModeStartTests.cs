using Microsoft.Extensions.Configuration;

namespace Escrow.Tests.Security;

/// <summary>
/// A real Stripe key never runs beside a sandbox or a public secret. Each test starts (or
/// checks) the service with the configuration an attacker or a careless deployment would give it.
/// </summary>
public sealed class LiveModeStartTests
{
    public const string RealLookingStripeKey = "sk_live_51Qx7aZkL2mN3oP4qR5sT6uV7wX8yZ9";
    private const string Strong = "Zq8r1Kx0Vb7Nw3Ly5Tc2Hm9Pd4Sg6Fj";

    /// <summary>A live configuration with nothing wrong: every test below breaks one part of it.</summary>
    public static Dictionary<string, string?> SafeLive() => new()
    {
        ["Stripe:SecretKey"] = RealLookingStripeKey,
        ["Stripe:WebhookSecret"] = "whsec_" + Strong,
        ["Stripe:ConnectWebhookSecret"] = "whsec_C" + Strong,
        ["Postmark:ServerToken"] = "9f0c7a52-3b1d-4e8f-a6c2-5d7e8f9a0b1c",
        ["Postmark:InboundUsername"] = "postmark",
        ["Postmark:InboundPassword"] = "In" + Strong,
        ["Api:PlatformKeys:0"] = "Pl" + Strong,
        ["Api:AdminKeys:0"] = "Ad" + Strong,
        ["Tokens:Secrets:0"] = "Tk" + Strong,
        ["ConnectionStrings:Escrow"] = "Host=db.internal;Username=escrow;Password=" + Strong + ";Database=escrow",
    };

    private static IReadOnlyList<string> ProblemsOf(Dictionary<string, string?> settings, bool servesApi = true) =>
        LiveMode.Problems(new ConfigurationBuilder().AddInMemoryCollection(settings).Build(), servesApi);

    private static Dictionary<string, string?> With(Dictionary<string, string?> settings, params (string Key, string? Value)[] changes)
    {
        foreach (var (key, value) in changes)
        {
            settings[key] = value;
        }
        return settings;
    }

    [Fact]
    public void A_complete_live_configuration_has_no_problem()
    {
        Assert.Empty(ProblemsOf(SafeLive()));
    }

    [Fact]
    public void The_sandbox_key_or_no_key_is_not_live_mode_and_is_not_checked()
    {
        Assert.Empty(ProblemsOf(new Dictionary<string, string?>()));
        Assert.Empty(ProblemsOf(new Dictionary<string, string?> { ["Stripe:SecretKey"] = LiveMode.SandboxStripeKey, ["Api:AdminKeys:0"] = "compose-dev-admin-key-0" }));
        Assert.Empty(ProblemsOf(new Dictionary<string, string?> { ["Stripe:SecretKey"] = LiveMode.SandboxStripeKeyPrefix + "benchmark", ["Stripe:ApiBase"] = "http://127.0.0.1:1/_sandbox/stripe" }));
        Assert.True(LiveMode.IsLive(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Stripe:SecretKey"] = "sk_test_51Abc" }).Build()));
    }

    [Fact]
    public void Real_stripe_key_beside_the_postmark_sandbox_is_refused()
    {
        var noToken = ProblemsOf(With(SafeLive(), ("Postmark:ServerToken", null)));
        var sandboxToken = ProblemsOf(With(SafeLive(), ("Postmark:ServerToken", LiveMode.SandboxPostmarkTokenPrefix + "compose")));

        Assert.Contains(noToken, p => p.StartsWith("Postmark:ServerToken:", StringComparison.Ordinal));
        Assert.Contains(sandboxToken, p => p.StartsWith("Postmark:ServerToken:", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("Stripe:WebhookSecret", "whsec_compose_dev_only")]
    [InlineData("Stripe:ConnectWebhookSecret", "whsec_compose_connect_dev_only")]
    [InlineData("Postmark:InboundPassword", "compose-dev-only-inbound")]
    [InlineData("Api:PlatformKeys:0", "compose-dev-platform-key")]
    [InlineData("Api:AdminKeys:0", "compose-dev-admin-key-0")]
    [InlineData("Api:AdminKeys:0", "dev-admin-0123456789abcdef0123456789")]
    [InlineData("Api:PlatformKeys:0", "sandbox-platform-0123456789abcdef01234")]
    [InlineData("Stripe:WebhookSecret", "whsec_dev-0123456789abcdef0123456789")]
    [InlineData("Tokens:Secrets:0", "compose-dev-token-secret-0")]
    [InlineData("Tokens:Secrets:1", "dev-token-0123456789abcdef0123456789")]
    public void Live_mode_with_a_public_development_secret_is_refused_naming_the_setting(string key, string value)
    {
        var problems = ProblemsOf(With(SafeLive(), (key, value)));

        var problem = Assert.Single(problems);
        Assert.StartsWith(key + ":", problem, StringComparison.Ordinal);
        Assert.Contains("development value", problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Stripe:WebhookSecret")]
    [InlineData("Stripe:ConnectWebhookSecret")]
    [InlineData("Postmark:InboundPassword")]
    [InlineData("Api:PlatformKeys:0")]
    [InlineData("Api:AdminKeys:0")]
    [InlineData("Tokens:Secrets:0")]
    public void Live_mode_with_a_short_secret_is_refused_naming_the_setting(string key)
    {
        var problem = Assert.Single(ProblemsOf(With(SafeLive(), (key, "whsec_Short1234567890"))));

        Assert.StartsWith(key + ":", problem, StringComparison.Ordinal);
        Assert.Contains($"shorter than {LiveMode.SecretLengthMin}", problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Stripe:WebhookSecret", "Stripe:WebhookSecret")]
    [InlineData("Stripe:ConnectWebhookSecret", "Stripe:ConnectWebhookSecret")]
    [InlineData("Postmark:InboundPassword", "Postmark:InboundPassword")]
    [InlineData("Api:PlatformKeys:0", "Api:PlatformKeys")]
    [InlineData("Api:AdminKeys:0", "Api:AdminKeys")]
    [InlineData("Tokens:Secrets:0", "Tokens:Secrets")]
    [InlineData("ConnectionStrings:Escrow", "ConnectionStrings:Escrow")]
    public void Live_mode_with_a_missing_secret_or_store_is_refused_naming_the_setting(string key, string named)
    {
        var problem = Assert.Single(ProblemsOf(With(SafeLive(), (key, null))));

        Assert.StartsWith(named + ":", problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Stripe:ApiBase", "http://stripe-mock:12111")]
    [InlineData("Postmark:ApiBase", "http://api:8080/_sandbox/postmark")]
    [InlineData("Stripe:ApiBase", "ftp://api.stripe.com")]
    public void Live_mode_with_a_provider_over_plain_http_is_refused_naming_the_setting(string key, string value)
    {
        var problem = Assert.Single(ProblemsOf(With(SafeLive(), (key, value))));

        Assert.StartsWith(key + ":", problem, StringComparison.Ordinal);
        Assert.Empty(ProblemsOf(With(SafeLive(), (key, "https://api.example.com"))));
    }

    [Fact]
    public void Live_mode_with_the_compose_database_password_is_refused()
    {
        var problem = Assert.Single(ProblemsOf(With(SafeLive(), ("ConnectionStrings:Escrow", "Host=postgres;Username=escrow;Password=escrow-dev-only;Database=escrow"))));

        Assert.StartsWith("ConnectionStrings:Escrow:", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_problem_of_the_compose_defaults_with_a_real_key_is_listed_at_once()
    {
        // docker-compose.yml's fallbacks with only STRIPE_SECRET_KEY set to a real key.
        var compose = new Dictionary<string, string?>
        {
            ["Stripe:SecretKey"] = RealLookingStripeKey,
            ["Stripe:WebhookSecret"] = "whsec_compose_dev_only",
            ["Stripe:ConnectWebhookSecret"] = "whsec_compose_connect_dev_only",
            ["Stripe:ApiBase"] = "http://api:8080/_sandbox/stripe",
            ["Postmark:ServerToken"] = "sandbox-postmark-compose",
            ["Postmark:ApiBase"] = "http://api:8080/_sandbox/postmark",
            ["Postmark:InboundUsername"] = "postmark",
            ["Postmark:InboundPassword"] = "compose-dev-only-inbound",
            ["Api:PlatformKeys:0"] = "compose-dev-platform-key",
            ["Api:AdminKeys:0"] = "compose-dev-admin-key-0",
            ["Tokens:Secrets:0"] = "compose-dev-token-secret-0",
            ["ConnectionStrings:Escrow"] = "Host=postgres;Port=5432;Username=escrow;Password=escrow-dev-only;Database=escrow",
        };

        var named = ProblemsOf(compose).Select(p => p[..p.IndexOf(": ", StringComparison.Ordinal)]).ToList();

        Assert.Equal(
            ["Postmark:ServerToken", "ConnectionStrings:Escrow", "Stripe:ApiBase", "Postmark:ApiBase", "Tokens:Secrets:0", "Stripe:WebhookSecret", "Stripe:ConnectWebhookSecret", "Postmark:InboundPassword", "Api:PlatformKeys:0", "Api:AdminKeys:0"],
            named);
        // A standalone silo checks what it uses: the providers, the store, the Postmark sandbox and the token secret.
        Assert.Equal(5, ProblemsOf(compose, servesApi: false).Count);
    }

    [Fact]
    public void Api_with_a_real_stripe_key_and_no_postmark_token_does_not_start()
    {
        var settings = With(SafeLive(), ("Postmark:ServerToken", null));
        using var app = new EscrowApiFactory(settings: settings);

        var refused = Assert.Throws<LiveModeRefusedException>(() => app.CreateClient());

        Assert.Contains(refused.Problems, p => p.StartsWith("Postmark:ServerToken:", StringComparison.Ordinal));
    }

    [Fact]
    public void Api_in_live_mode_with_compose_default_keys_does_not_start_and_generates_nothing()
    {
        var settings = With(SafeLive(), ("Api:AdminKeys:0", "compose-dev-admin-key-0"), ("Api:PlatformKeys:0", null), ("Postmark:InboundPassword", null));
        using var app = new EscrowApiFactory(settings: settings);

        var refused = Assert.Throws<LiveModeRefusedException>(() => app.CreateClient());

        Assert.Contains(refused.Problems, p => p.StartsWith("Api:AdminKeys:0:", StringComparison.Ordinal));
        // Missing ones are reported, not generated.
        Assert.Contains(refused.Problems, p => p.StartsWith("Api:PlatformKeys:", StringComparison.Ordinal));
        Assert.Contains(refused.Problems, p => p.StartsWith("Postmark:InboundPassword:", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Real_postmark_beside_the_stripe_sandbox_starts_with_no_postmark_emulator()
    {
        var settings = new Dictionary<string, string?> { ["Postmark:ServerToken"] = "9f0c7a52-3b1d-4e8f-a6c2-5d7e8f9a0b1c" };
        await using var app = new EscrowApiFactory(settings: settings);
        var client = app.CreateClient();

        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/_sandbox/postmark/outbox")).StatusCode);
        // The Stripe emulator is there (Stripe is in sandbox mode): it creates a PaymentIntent.
        var stripe = new HttpRequestMessage(HttpMethod.Post, "/_sandbox/stripe/v1/payment_intents")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["amount"] = "1000", ["currency"] = "eur" }),
        };
        stripe.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", LiveMode.SandboxStripeKey);
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(stripe)).StatusCode);
    }
}
