using Escrow.Api.Hosting;
using Escrow.Tests.Security;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Escrow.Tests.Hosting;

/// <summary>
/// Every section of ours is checked when the host starts: one wrong value stops it with the message that names the
/// setting and says how to fix it.
/// </summary>
public sealed class OptionsValidationTests
{
    [Theory]
    [InlineData("Escrow:ReplyGrace", "-00:01:00", "Escrow:ReplyGrace must not be negative")]
    [InlineData("CircuitBreaker:Window", "PT0S", "CircuitBreaker:Window must be a positive ISO 8601 duration")]
    [InlineData("Stripe:WebhookToleranceSeconds", "0", "Stripe:WebhookToleranceSeconds must be 1..3600")]
    [InlineData("Postmark:InboundMaxBytes", "10", "Postmark:InboundMaxBytes must be at least 1024.")]
    [InlineData("Api:PublicBaseUrl", "escrow.example.com", "Api:PublicBaseUrl must be an absolute http(s) URL")]
    [InlineData("Api:OnboardingLinkLifetime", "PT0S", "Api:OnboardingLinkLifetime must be positive")]
    [InlineData("Tokens:Secrets:0", " ", "Tokens:Secrets: no secret configured")]
    [InlineData("Reconciliation:RunAtUtc", "1.00:00:00", "Reconciliation:RunAtUtc must be a time of day in UTC")]
    [InlineData("Reconciliation:EscrowsPerRunMax", "0", "Reconciliation:EscrowsPerRunMax must be 1..1000000.")]
    [InlineData("RateLimits:DeclinesPerClientMax", "0", "RateLimits:DeclinesPerClientMax must be 1..1000 (default 3).")]
    [InlineData("RateLimits:DeclinesPerWindowAlert", "1000", "RateLimits:DeclinesPerWindowAlert must be 1..999 (default 20).")]
    [InlineData("Retention:Period", "P8D", "Retention:Period must be PT1M to P7D")]
    [InlineData("Monitor:EffectStuckAfter", "PT0S", "Monitor:EffectStuckAfter must be a positive duration.")]
    [InlineData("Alerts:MinimumSeverity", "loud", "Alerts:MinimumSeverity must be info, warning or critical.")]
    [InlineData("Api:TrustedProxies:0", "proxy.internal", "Api:TrustedProxies: every entry must be an IP address")]
    public void A_wrong_value_stops_the_host_at_start_naming_the_setting(string key, string value, string expected)
    {
        var settings = LiveModeStartTests.SafeLive();
        settings.Remove("ConnectionStrings:Escrow");
        settings[key] = value;
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection().AddLogging().AddEscrowServices(configuration).AddEscrowRateLimits(configuration);
        using var provider = services.BuildServiceProvider();

        var error = Assert.ThrowsAny<Exception>(() => provider.GetRequiredService<IStartupValidator>().Validate());

        // Several sections may fail on one value (the breaker's validator reads Escrow's options): all of them by name.
        var failures = error is AggregateException all ? all.InnerExceptions : [error];
        Assert.All(failures, f => Assert.IsType<OptionsValidationException>(f));
        Assert.Contains(failures, f => f.Message.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void The_configuration_the_tests_start_from_passes()
    {
        var settings = LiveModeStartTests.SafeLive();
        settings.Remove("ConnectionStrings:Escrow");
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        using var provider = new ServiceCollection().AddLogging().AddEscrowServices(configuration).AddEscrowRateLimits(configuration)
            .BuildServiceProvider();

        provider.GetRequiredService<IStartupValidator>().Validate();
    }

    [Theory]
    [InlineData("short-key", "Every key in Api:PlatformKeys and Api:AdminKeys must be at least 16 characters long.")]
    [InlineData(null, "Api:AdminKeys needs at least one key (Api__AdminKeys__0).")]
    public void Api_keys_are_refused_by_name(string? adminKey, string expected)
    {
        var options = new ApiKeyOptions { AdminKeys = adminKey is null ? [] : [adminKey] };

        var result = new ApiKeyOptionsValidator().Validate(null, options);

        Assert.Equal([expected], result.Failures);
    }
}
