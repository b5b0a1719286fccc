using Escrow.Grains;
using Escrow.Grains.Alerts;
using Escrow.Grains.Email;
using Escrow.Grains.Payments;
using Escrow.Grains.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Npgsql;
using Orleans.Configuration;
using Orleans.Dashboard;
using Orleans.Reminders;
using Orleans.Serialization;
using Orleans.Storage;
using Stripe;

namespace Escrow.Silo;

/// <summary>
/// The one place that configures an Escrow silo, used by the standalone silo and by the API's co-hosted silo.
/// ConnectionStrings:Escrow set → PostgreSQL for grain state, reminders and our tables (schema applied first);
/// otherwise in-memory, which is not durable. Silo:Clustering = AdoNet joins a PostgreSQL-backed cluster.
/// </summary>
public static class EscrowHosting
{
    public const string ConnectionStringName = "Escrow";
    public const string StripeHttpClient = "Escrow.Stripe";
    public const string PostmarkHttpClient = "Escrow.Postmark";

    /// <summary>Our silo settings. Not "Orleans": Orleans reads that section itself as provider configuration.</summary>
    public const string SiloSection = "Silo";

    public static bool IsDurable(IConfiguration configuration) => !string.IsNullOrWhiteSpace(configuration.GetConnectionString(ConnectionStringName));

    /// <summary>
    /// The configured connection string, with two settings unless it says otherwise. <c>No Reset On Close</c>: no
    /// connection here keeps session state, so the DISCARD ALL that Npgsql sends when a pooled connection is returned
    /// (one transaction each, measured in docs/BENCHMARKS.md) buys nothing. <c>Max Auto Prepare</c>: every statement
    /// of ours and of the Orleans providers is one of a few dozen fixed texts run again and again, so Npgsql prepares
    /// the frequent ones on each connection and PostgreSQL stops parsing and planning them on every call.
    /// </summary>
    public static string? ConnectionString(IConfiguration configuration)
    {
        var configured = configuration.GetConnectionString(ConnectionStringName);
        if (string.IsNullOrWhiteSpace(configured))
        {
            return null;
        }
        var builder = new NpgsqlConnectionStringBuilder(configured);
        if (!Sets(configured, "ResetOnClose"))
        {
            builder.NoResetOnClose = true;
        }
        if (!Sets(configured, "MaxAutoPrepare"))
        {
            builder.MaxAutoPrepare = AutoPreparedStatementsMax;
        }
        return builder.ConnectionString;
    }

    /// <summary>Whether a connection string names a setting, in any case and with or without its spaces.</summary>
    private static bool Sets(string connectionString, string keywordWithoutSpaces) =>
        connectionString.Replace(" ", "", StringComparison.Ordinal).Contains(keywordWithoutSpaces, StringComparison.OrdinalIgnoreCase);

    /// <summary>Statements Npgsql keeps prepared per connection (least recently used replaced first).</summary>
    public const int AutoPreparedStatementsMax = 64;

    public static IServiceCollection AddEscrowServices(this IServiceCollection services, IConfiguration configuration)
    {
        Iso8601TimeSpanConverter.Register();
        services.AddOptions<EscrowOptions>().Bind(configuration.GetSection(EscrowOptions.Section))
            .Configure(o => o.ReverseTransferOnDispute = configuration.GetValue("Disputes:ReverseTransfer", o.ReverseTransferOnDispute)).ValidateOnStart();
        services.AddOptions<CircuitBreakerOptions>().Bind(configuration.GetSection(CircuitBreakerOptions.Section)).ValidateOnStart();
        services.AddOptions<StripeOptions>().Bind(configuration.GetSection(StripeOptions.Section)).ValidateOnStart();
        services.AddOptions<PostmarkOptions>().Bind(configuration.GetSection(PostmarkOptions.Section)).ValidateOnStart();
        services.AddOptions<PublicLinkOptions>().Bind(configuration.GetSection(PublicLinkOptions.Section))
            .Validate(o => o.PublicBaseUrl is null || (Uri.TryCreate(o.PublicBaseUrl, UriKind.Absolute, out var u) && u.Scheme is "http" or "https"),
                "Api:PublicBaseUrl must be an absolute http(s) URL, e.g. https://escrow.example.com (the links in e-mails start with it).")
            .Validate(o => o.OnboardingLinkLifetime > TimeSpan.Zero, "Api:OnboardingLinkLifetime must be positive (default P14D).")
            .ValidateOnStart();
        services.TryAddSingleton<OnboardingLinks>();
        services.AddOptions<TokenOptions>().Bind(configuration.GetSection(TokenOptions.Section)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<TokenOptions>, TokenOptionsValidator>();
        services.TryAddSingleton(sp => new EscrowTokens(sp.GetRequiredService<IOptions<TokenOptions>>().Value.Secrets));
        services.AddOptions<ReconciliationOptions>().Bind(configuration.GetSection(ReconciliationOptions.Section))
            .Validate(o => o.RunAtUtc >= TimeSpan.Zero && o.RunAtUtc < TimeSpan.FromDays(1), "Reconciliation:RunAtUtc must be a time of day in UTC, 00:00:00 to 23:59:59.")
            .Validate(o => o.EscrowsPerRunMax is >= 1 and <= 1_000_000, "Reconciliation:EscrowsPerRunMax must be 1..1000000.")
            .ValidateOnStart();
        services.AddOptions<CardTestingOptions>().Bind(configuration.GetSection(CardTestingOptions.Section))
            .Validate(o => o.DeclinesPerClientMax is >= 1 and <= Escrow.Grains.Domain.CardTesting.DeclinesKeptMax, $"RateLimits:DeclinesPerClientMax must be 1..{Escrow.Grains.Domain.CardTesting.DeclinesKeptMax} (default 3).")
            .Validate(o => o.DeclinesPerWindowAlert is >= 1 and < Escrow.Grains.Domain.CardTesting.DeclinesKeptMax, $"RateLimits:DeclinesPerWindowAlert must be 1..{Escrow.Grains.Domain.CardTesting.DeclinesKeptMax - 1} (default 20).")
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<EscrowOptions>, EscrowOptionsValidator>();
        services.AddSingleton<IValidateOptions<CircuitBreakerOptions>, CircuitBreakerOptionsValidator>();
        services.AddSingleton<IValidateOptions<StripeOptions>, StripeOptionsValidator>();
        services.AddSingleton<IValidateOptions<PostmarkOptions>, PostmarkOptionsValidator>();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<IExternalEndpoints, ConfiguredEndpoints>();

        if (IsDurable(configuration))
        {
            var connectionString = ConnectionString(configuration)!;
            services.AddSingleton(_ => NpgsqlDataSource.Create(connectionString));
            services.AddSingleton<PostgresEscrowStore>();
            services.AddSingleton<IEscrowStore>(sp => sp.GetRequiredService<PostgresEscrowStore>());
            services.AddSingleton<IPersonalDataStore>(sp => sp.GetRequiredService<PostgresEscrowStore>());
            services.AddSingleton<IAlertDeliveryStore, PostgresAlertDeliveryStore>();
            services.AddHostedService<SchemaMigrationService>();
        }
        else
        {
            services.AddSingleton<InMemoryEscrowStore>();
            services.AddSingleton<IEscrowStore>(sp => sp.GetRequiredService<InMemoryEscrowStore>());
            services.AddSingleton<IPersonalDataStore>(sp => sp.GetRequiredService<InMemoryEscrowStore>());
            services.AddSingleton<IAlertDeliveryStore, InMemoryAlertDeliveryStore>();
        }

        services.TryAddSingleton<StripeRateBudget>();
        services.AddTransient<StripeRateBudgetHandler>();
        services.AddHttpClient(StripeHttpClient).AddHttpMessageHandler<StripeRateBudgetHandler>();
        services.AddSingleton<IStripeClient>(sp =>
        {
            var stripe = sp.GetRequiredService<IOptions<StripeOptions>>().Value;
            var http = new SystemNetHttpClient(sp.GetRequiredService<IHttpClientFactory>().CreateClient(StripeHttpClient), maxNetworkRetries: 2, appInfo: null, enableTelemetry: false);
            var apiBase = sp.GetRequiredService<IExternalEndpoints>().StripeApiBase;
            return apiBase is null
                ? new StripeClient(stripe.SecretKey, httpClient: http)
                : new StripeClient(stripe.SecretKey, httpClient: http, apiBase: apiBase);
        });
        services.AddSingleton<IPaymentGateway, StripePaymentGateway>();
        services.AddHttpClient<IEmailSender, PostmarkEmailSender>(PostmarkHttpClient, http => http.Timeout = TimeSpan.FromSeconds(30));
        services.AddSingleton<EscrowEffects>();
        services.AddSingleton<Escrow.Grains.Email.PayoutReminderMail>();
        services.AddSingleton<PersonalDataEraser>();
        services.AddOptions<RetentionOptions>().Bind(configuration.GetSection(RetentionOptions.Section)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<RetentionOptions>, RetentionOptionsValidator>();
        services.AddEscrowTelemetry(configuration);
        services.AddHostedService<ReminderScheduler>();
        services.AddOptions<MonitorOptions>().Bind(configuration.GetSection(MonitorOptions.Section)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<MonitorOptions>, MonitorOptionsValidator>();
        services.AddOptions<AlertOptions>().Bind(configuration.GetSection(AlertOptions.Section)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<AlertOptions>, AlertOptionsValidator>();
        services.AddHttpClient(AlertDeliveryService.HttpClientName, http => http.Timeout = TimeSpan.FromSeconds(10));
        services.AddHostedService<AlertDeliveryService>();
        return services;
    }

    /// <summary>
    /// Lets the database's exceptions cross grain calls as themselves. Orleans serializes only exceptions of the
    /// namespaces it is told of (System and Microsoft by default): a failed write in one grain (NpgsqlException) reached
    /// its caller on another silo, or the API's client, as a CodecNotFoundException, which nobody retries.
    /// </summary>
    public static IServiceCollection AddDatabaseExceptionSerialization(this IServiceCollection services) =>
        services.Configure<ExceptionSerializationOptions>(o => o.SupportedNamespacePrefixes.Add("Npgsql"));

    /// <summary>Grain state and reminders: PostgreSQL (ADO.NET, Orleans' binary format) with a connection string, memory without.</summary>
    public static ISiloBuilder AddEscrowPersistence(this ISiloBuilder silo, string? connectionString)
    {
        silo.Services.AddDatabaseExceptionSerialization();
        // Persist with Orleans' version-tolerant binary format, governed by [GenerateSerializer]/[Id] (pitfall P3), in
        // memory too: with the default JSON serializer a circuit breaker reactivated after idle collection could not
        // read its state back and failed every call (CircuitBreakerGrainTests, the test that replaces the activation).
        silo.Services.AddKeyedSingleton<IGrainStorageSerializer, OrleansGrainStorageSerializer>(EscrowStorage.ProviderName);
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            silo.AddMemoryGrainStorage(EscrowStorage.ProviderName);
            silo.UseInMemoryReminderService();
            return silo.UseCoalescedReminderTimers();
        }
        silo.AddAdoNetGrainStorage(EscrowStorage.ProviderName, o =>
        {
            o.Invariant = "Npgsql";
            o.ConnectionString = connectionString;
        });
        silo.UseAdoNetReminderService(o =>
        {
            o.Invariant = "Npgsql";
            o.ConnectionString = connectionString;
        });
        return silo.UseCoalescedReminderTimers();
    }

    /// <summary>
    /// The reminder service waits for each reminder it holds in memory on one queue behind one system timer
    /// (<see cref="CoalescingTimeProvider"/>) instead of a .NET timer each: open escrows' reminders cost no CPU while
    /// nothing is due. Real time, as Orleans' default; a test that pins background areas to the system clock gets the same.
    /// </summary>
    private static ISiloBuilder UseCoalescedReminderTimers(this ISiloBuilder silo)
    {
        silo.Services.AddKeyedSingleton<TimeProvider>(ReminderTimeProviderNames.Reminders, static (_, _) => new CoalescingTimeProvider(TimeProvider.System));
        return silo;
    }

    public static ISiloBuilder AddEscrow(this ISiloBuilder silo, IConfiguration configuration)
    {
        var connectionString = ConnectionString(configuration);
        silo.AddEscrowPersistence(connectionString);

        var orleans = configuration.GetSection(SiloSection);
        if (string.Equals(orleans["Clustering"], "AdoNet", StringComparison.OrdinalIgnoreCase))
        {
            if (string.IsNullOrWhiteSpace(connectionString))
            {
                throw new OptionsValidationException(SiloSection, typeof(ClusterOptions),
                    ["Silo:Clustering=AdoNet needs ConnectionStrings:Escrow (the cluster's membership lives in PostgreSQL)."]);
            }
            silo.UseAdoNetClustering(o =>
            {
                o.Invariant = "Npgsql";
                o.ConnectionString = connectionString;
            });
            silo.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = orleans["ClusterId"] ?? "escrow";
                o.ServiceId = orleans["ServiceId"] ?? "escrow";
            });
            silo.UseClusterEndpoints(orleans);
        }
        else
        {
            silo.UseLocalhostClustering(
                siloPort: orleans.GetValue("SiloPort", 11111),
                gatewayPort: orleans.GetValue("GatewayPort", 30000),
                serviceId: orleans["ServiceId"] ?? "escrow",
                clusterId: orleans["ClusterId"] ?? "escrow");
        }
        silo.UseClusterTls(orleans);

        silo.Configure<ReminderOptions>(o =>
        {
            o.MinimumReminderPeriod = orleans.GetValue("ReminderMinimumPeriod", TimeSpan.FromMinutes(1));
            o.RefreshReminderListPeriod = orleans.GetValue("ReminderRefreshPeriod", TimeSpan.FromMinutes(5));
            o.ReminderLoadingWindow = TimeSpan.FromMinutes(10) > o.RefreshReminderListPeriod ? TimeSpan.FromMinutes(10) : o.RefreshReminderListPeriod;
        });
        // An escrow sits idle for hours between its events (hold, warnings, deadline, reply): its activation goes after
        // two idle minutes rather than Orleans' 15 (the least allowed is just over the 1-minute collection quantum), so
        // open escrows cost rows, not memory and per-activation runtime work: every second the dashboard collects
        // Orleans' metrics, and two of Orleans' gauges walk every activation and every grain-directory cache entry.
        // Stripe's echoes of a new hold, and a reply within two minutes, still find the activation; a reminder tick
        // hours later reads the state again either way.
        silo.Configure<GrainCollectionOptions>(o =>
            o.ClassSpecificCollectionAge[typeof(EscrowGrain).FullName!] = orleans.GetValue("EscrowCollectionAge", TimeSpan.FromMinutes(2)));
        if (EscrowTelemetryHosting.OtlpEndpoint(configuration) is not null)
        {
            // Spans across grain calls: only when traces are exported (see AddEscrowTelemetry).
            silo.AddActivityPropagation();
        }
        silo.AddDashboard(o =>
        {
            o.CounterUpdateIntervalMs = 1000;
            // The log stream shows the silo's logs: only in development.
            o.HideTrace = !string.Equals(configuration["ASPNETCORE_ENVIRONMENT"] ?? configuration["DOTNET_ENVIRONMENT"], "Development", StringComparison.OrdinalIgnoreCase);
        });
        return silo;
    }
}

/// <summary>Applies sql/ before the silo starts: the Orleans providers read their queries at start-up.</summary>
public sealed class SchemaMigrationService(NpgsqlDataSource dataSource, ILogger<SchemaMigrationService> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => SchemaMigrator.ApplyAsync(dataSource, logger, cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

public sealed class StripeOptionsValidator : IValidateOptions<StripeOptions>
{
    public ValidateOptionsResult Validate(string? name, StripeOptions o)
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(o.SecretKey))
        {
            errors.Add("Stripe:SecretKey is missing: set Stripe__SecretKey (sk_live_… or sk_test_…), or leave Stripe unconfigured in Escrow.Api to use the sandbox.");
        }
        if (string.IsNullOrWhiteSpace(o.WebhookSecret) || !o.WebhookSecret.StartsWith("whsec_", StringComparison.Ordinal))
        {
            errors.Add("Stripe:WebhookSecret must be the endpoint's signing secret (whsec_…): set Stripe__WebhookSecret.");
        }
        if (StripeOptions.Secrets(o.ConnectWebhookSecret).Any(s => !s.StartsWith("whsec_", StringComparison.Ordinal)))
        {
            errors.Add("Stripe:ConnectWebhookSecret must be the Connect endpoint's signing secret (whsec_…; several separated by commas): set Stripe__ConnectWebhookSecret.");
        }
        if (o.MaxRequestsPerSecond is < 0)
        {
            errors.Add("Stripe:MaxRequestsPerSecond must be 0 (no budget) or more; unset means 20 with a test key, 80 with a live key.");
        }
        if (o.ConnectCountry is not { Length: 2 } || o.PlatformCountry is not { Length: 2 } || !o.ConnectCountry.All(char.IsAsciiLetterUpper) || !o.PlatformCountry.All(char.IsAsciiLetterUpper))
        {
            errors.Add("Stripe:ConnectCountry and Stripe:PlatformCountry must be ISO 3166 alpha-2 codes in upper case, such as FR.");
        }
        if (o.WebhookToleranceSeconds is < 1 or > 3600)
        {
            errors.Add("Stripe:WebhookToleranceSeconds must be 1..3600 (default 300).");
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

public sealed class PostmarkOptionsValidator : IValidateOptions<PostmarkOptions>
{
    public ValidateOptionsResult Validate(string? name, PostmarkOptions o)
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(o.ServerToken))
        {
            errors.Add("Postmark:ServerToken is missing: set Postmark__ServerToken, or leave Postmark unconfigured in Escrow.Api to use the sandbox.");
        }
        if (string.IsNullOrWhiteSpace(o.InboundUsername) || string.IsNullOrWhiteSpace(o.InboundPassword))
        {
            errors.Add("Postmark:InboundUsername and Postmark:InboundPassword protect the inbound webhook: set Postmark__InboundUsername and Postmark__InboundPassword.");
        }
        if (string.IsNullOrWhiteSpace(o.InboundDomain) || o.InboundDomain.Contains('@', StringComparison.Ordinal))
        {
            errors.Add("Postmark:InboundDomain must be the inbound domain alone, e.g. reply.example.com.");
        }
        if (o.InboundMaxBytes < 1024)
        {
            errors.Add("Postmark:InboundMaxBytes must be at least 1024.");
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
