using System.Security.Cryptography;
using Escrow.Sandbox;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Escrow.Api.Hosting;

/// <summary>
/// With no Stripe or Postmark keys, the API serves emulators of both and points the real Stripe.net and Postmark
/// code at them. Each emulator exists only while its provider is in sandbox mode. Outside live mode (see
/// <see cref="LiveMode"/>), missing development secrets (API keys, webhook secret, inbound credentials) are generated
/// for this run and printed once at start-up; in live mode nothing is generated.
/// </summary>
public static class SandboxHosting
{
    public sealed record Generated(List<string> Lines);

    public const string SandboxStripeKey = LiveMode.SandboxStripeKey;
    public const string SandboxPostmarkTokenPrefix = LiveMode.SandboxPostmarkTokenPrefix;

    /// <summary>
    /// This process hosts the Stripe emulator: no key, or the sandbox's own key (so the silos of a cluster can share
    /// the API's sandbox). Never with any other key, so a real key never has an emulator beside it.
    /// </summary>
    public static bool UsesStripeSandbox(IConfiguration c) => string.IsNullOrWhiteSpace(c["Stripe:SecretKey"]) || c["Stripe:SecretKey"] == SandboxStripeKey;

    public static bool UsesPostmarkSandbox(IConfiguration c) => LiveMode.UsesPostmarkSandbox(c);

    /// <summary>
    /// Fills in the development secrets that are not configured. With <paramref name="keptIn"/> (a file beside the local
    /// run's data) each one is generated once and read back on every later start, so keys, webhook secrets and the
    /// data they protect stay together.
    /// </summary>
    public static Generated ApplyDevelopmentDefaults(ConfigurationManager configuration, string? keptIn = null)
    {
        var generated = new List<string>();
        var values = new Dictionary<string, string?>();
        if (LiveMode.IsLive(configuration))
        {
            // Real money: every secret is the operator's; a generated one would only hide a missing setting.
            return new Generated(generated);
        }
        var kept = keptIn is not null && File.Exists(keptIn)
            ? System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(keptIn)) ?? []
            : new Dictionary<string, string>();
        var origin = keptIn is null ? "generated" : $"kept in {keptIn}";
        string Secret(string name, int bytes)
        {
            if (!kept.TryGetValue(name, out var value))
            {
                kept[name] = value = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(bytes));
            }
            return value;
        }
        if (string.IsNullOrWhiteSpace(configuration["Stripe:SecretKey"]))
        {
            values["Stripe:SecretKey"] = SandboxStripeKey;
            if (string.IsNullOrWhiteSpace(configuration["Stripe:WebhookSecret"]))
            {
                values["Stripe:WebhookSecret"] = "whsec_" + Secret("Stripe:WebhookSecret", 24);
            }
        }
        if (UsesStripeSandbox(configuration) && string.IsNullOrWhiteSpace(configuration["Stripe:ConnectWebhookSecret"]))
        {
            values["Stripe:ConnectWebhookSecret"] = "whsec_" + Secret("Stripe:ConnectWebhookSecret", 24);
            generated.Add($"Stripe Connect webhook secret ({origin}; signs the sandbox's account.updated): {values["Stripe:ConnectWebhookSecret"]}");
        }
        if (string.IsNullOrWhiteSpace(configuration["Api:PublicBaseUrl"]) && UsesStripeSandbox(configuration))
        {
            // The links in e-mails need the service's public address; in development it is the address it listens on.
            var urls = configuration["urls"] ?? configuration["ASPNETCORE_URLS"];
            values["Api:PublicBaseUrl"] = string.IsNullOrWhiteSpace(urls) ? OnboardingLinks.DefaultBaseUrl : urls.Split(';')[0].Replace("://+", "://localhost", StringComparison.Ordinal).Replace("://*", "://localhost", StringComparison.Ordinal).Replace("://0.0.0.0", "://localhost", StringComparison.Ordinal);
        }
        if (string.IsNullOrWhiteSpace(configuration["Postmark:ServerToken"]))
        {
            values["Postmark:ServerToken"] = SandboxPostmarkTokenPrefix + Secret("Postmark:ServerToken", 8);
        }
        if (string.IsNullOrWhiteSpace(configuration["Postmark:InboundUsername"]) || string.IsNullOrWhiteSpace(configuration["Postmark:InboundPassword"]))
        {
            values["Postmark:InboundUsername"] = "postmark";
            values["Postmark:InboundPassword"] = Secret("Postmark:InboundPassword", 16);
            generated.Add($"Postmark inbound webhook credentials ({origin}): postmark:{values["Postmark:InboundPassword"]}");
        }
        if (!configuration.GetSection("Api:PlatformKeys").GetChildren().Any())
        {
            values["Api:PlatformKeys:0"] = "dev-platform-" + Secret("Api:PlatformKeys:0", 12);
            generated.Add($"Platform API key ({origin}): {values["Api:PlatformKeys:0"]}");
        }
        if (!configuration.GetSection("Api:AdminKeys").GetChildren().Any())
        {
            values["Api:AdminKeys:0"] = "dev-admin-" + Secret("Api:AdminKeys:0", 12);
            generated.Add($"Admin API key ({origin}): {values["Api:AdminKeys:0"]}");
        }
        if (!configuration.GetSection("Tokens:Secrets").GetChildren().Any())
        {
            // Kept with the data: the tokens of escrows made before a restart are derived again from it.
            values["Tokens:Secrets:0"] = "dev-token-" + Secret("Tokens:Secrets:0", 24);
            generated.Add($"Token secret ({origin}; signs access and reply tokens): Tokens:Secrets:0");
        }
        configuration.AddInMemoryCollection(values);
        if (keptIn is not null)
        {
            File.WriteAllText(keptIn, System.Text.Json.JsonSerializer.Serialize(kept));
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(keptIn, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }
        }
        return new Generated(generated);
    }

    public static IServiceCollection AddEscrowSandboxes(this IServiceCollection services, IConfiguration configuration)
    {
        var stripe = UsesStripeSandbox(configuration);
        var postmark = UsesPostmarkSandbox(configuration);
        if (!stripe && !postmark)
        {
            return services;
        }
        services.AddEscrowSandbox(o =>
        {
            // Only the Stripe emulator signs events, and only in sandbox mode; the Postmark emulator alone signs nothing.
            o.WebhookSecret = stripe ? configuration["Stripe:WebhookSecret"] ?? "whsec_unused" : "whsec_no_stripe_emulator";
            o.ConnectWebhookSecret = stripe ? configuration["Stripe:ConnectWebhookSecret"] ?? configuration["Stripe:WebhookSecret"] ?? "whsec_unused" : "whsec_no_stripe_emulator";
            o.PlatformCountry = configuration["Stripe:PlatformCountry"] ?? new StripeOptions().PlatformCountry;
            o.RateLimitPerSecond = configuration.GetValue("Sandbox:Stripe:RateLimitPerSecond", 0);
            o.DeliverWebhooks = stripe;
            o.PostmarkServerToken = postmark ? configuration["Postmark:ServerToken"] ?? "" : "";
            o.PostmarkInboundUsername = configuration["Postmark:InboundUsername"] ?? "";
            o.PostmarkInboundPassword = postmark ? configuration["Postmark:InboundPassword"] ?? "" : "";
            // With the service's database, the emulators keep their objects beside its state: a restart finds both.
            o.ConnectionString = configuration.GetConnectionString(Escrow.Silo.EscrowHosting.ConnectionStringName);
        });
        services.AddSingleton<IExternalEndpoints>(sp => new SandboxEndpoints(stripe, postmark, sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<PostmarkOptions>>().Value.ApiBase));
        services.AddTransient<SandboxAddressHandler>();
        foreach (var name in new[] { Escrow.Silo.EscrowHosting.StripeHttpClient, Escrow.Silo.EscrowHosting.PostmarkHttpClient })
        {
            services.AddHttpClient(name).AddHttpMessageHandler<SandboxAddressHandler>();
        }
        return services;
    }

    /// <summary>
    /// The emulators live at this process's own address, which is known only once the server listens, while a
    /// silo may call Stripe before that (a reminder due at start-up). Clients are given a placeholder host, and
    /// <see cref="SandboxAddressHandler"/> puts the real address in at each request.
    /// </summary>
    private sealed class SandboxEndpoints(bool stripe, bool postmark, string postmarkApiBase) : IExternalEndpoints
    {
        public string? StripeApiBase => stripe ? $"http://{SandboxAddressHandler.PlaceholderHost}/_sandbox/stripe" : null;

        public string PostmarkApiBase => postmark ? $"http://{SandboxAddressHandler.PlaceholderHost}/_sandbox/postmark" : postmarkApiBase;
    }
}

public sealed class SandboxAddressHandler(IServer server) : DelegatingHandler
{
    public const string PlaceholderHost = "escrow-sandbox.invalid";

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (request.RequestUri is { Host: PlaceholderHost } uri)
        {
            var self = new Uri(Self());
            request.RequestUri = new UriBuilder(uri) { Scheme = self.Scheme, Host = self.Host, Port = self.Port }.Uri;
        }
        return base.SendAsync(request, cancellationToken);
    }

    private string Self()
    {
        var address = server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault() ?? "http://localhost";
        return address.Replace("://0.0.0.0", "://127.0.0.1", StringComparison.Ordinal).Replace("://[::]", "://127.0.0.1", StringComparison.Ordinal)
            .Replace("://+", "://127.0.0.1", StringComparison.Ordinal).Replace("://*", "://127.0.0.1", StringComparison.Ordinal);
    }
}
