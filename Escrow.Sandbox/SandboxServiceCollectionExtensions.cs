using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;

namespace Escrow.Sandbox;

public static class SandboxServiceCollectionExtensions
{
    /// <summary>
    /// Registers the Stripe and Postmark emulators: the <see cref="StripeSandbox"/> and <see cref="PostmarkSandbox"/>
    /// stores, the named webhook <see cref="HttpClient"/> (<see cref="SandboxOptions.WebhookHttpClientName"/>) and the
    /// hosted service that delivers events.
    /// </summary>
    public static IServiceCollection AddEscrowSandbox(this IServiceCollection services, Action<SandboxOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);

        services.AddOptions<SandboxOptions>()
            .Configure(configure)
            .Validate(o => o.WebhookSecret.StartsWith("whsec_", StringComparison.Ordinal) && o.WebhookSecret.Length > 6,
                "SandboxOptions.WebhookSecret is required and must start with \"whsec_\".")
            .Validate(o => o.ConnectWebhookSecret.Split(',').All(secret => secret.Trim().StartsWith("whsec_", StringComparison.Ordinal) && secret.Trim().Length > 6),
                "SandboxOptions.ConnectWebhookSecret is required and must start with \"whsec_\" (several separated by commas).")
            .Validate(o => o.RateLimitPerSecond >= 0, "SandboxOptions.RateLimitPerSecond must not be negative (0 = no limit).")
            .Validate(o => o.WebhookMaxAttempts >= 1, "SandboxOptions.WebhookMaxAttempts must be at least 1.")
            .Validate(o => o.WebhookFirstRetryDelay >= TimeSpan.Zero,
                "SandboxOptions.WebhookFirstRetryDelay must not be negative.")
            .Validate(o => !string.IsNullOrWhiteSpace(o.ApiVersion), "SandboxOptions.ApiVersion is required.")
            .ValidateOnStart();

        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new SandboxJournal(
            sp.GetRequiredService<IOptions<SandboxOptions>>().Value.ConnectionString!, sp.GetRequiredService<ILogger<SandboxJournal>>()));
        services.TryAddSingleton(sp => new StripeSandbox(
            sp.GetRequiredService<IOptions<SandboxOptions>>(), sp.GetRequiredService<TimeProvider>(), Journal(sp)));
        services.TryAddSingleton(sp => new PostmarkSandbox(Journal(sp)));
        services.AddHttpClient(SandboxOptions.WebhookHttpClientName, client => client.Timeout = TimeSpan.FromSeconds(30));
        services.AddHostedService<StripeWebhookDeliveryService>();
        return services;
    }

    /// <summary>The journal when a connection string is configured; otherwise the emulators keep everything in memory.</summary>
    private static SandboxJournal? Journal(IServiceProvider sp) =>
        string.IsNullOrWhiteSpace(sp.GetRequiredService<IOptions<SandboxOptions>>().Value.ConnectionString)
            ? null
            : sp.GetRequiredService<SandboxJournal>();
}
