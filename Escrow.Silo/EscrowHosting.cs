using Escrow.Grains.Alerts;
using Escrow.Grains.Email;
using Escrow.Grains.Payments;
using Escrow.Grains.Storage;
using Microsoft.Extensions.DependencyInjection.Extensions;
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
        services.AddEscrowOptions<EscrowOptions, EscrowOptionsValidator>(configuration, EscrowOptions.Section)
            .Configure(o => o.ReverseTransferOnDispute = configuration.GetValue("Disputes:ReverseTransfer", o.ReverseTransferOnDispute));
        services.AddEscrowOptions<CircuitBreakerOptions, CircuitBreakerOptionsValidator>(configuration, CircuitBreakerOptions.Section);
        services.AddEscrowOptions<StripeOptions, StripeOptionsValidator>(configuration, StripeOptions.Section);
        services.AddEscrowOptions<PostmarkOptions, PostmarkOptionsValidator>(configuration, PostmarkOptions.Section);
        services.AddEscrowOptions<PublicLinkOptions, PublicLinkOptionsValidator>(configuration, PublicLinkOptions.Section);
        services.TryAddSingleton<OnboardingLinks>();
        services.AddEscrowOptions<TokenOptions, TokenOptionsValidator>(configuration, TokenOptions.Section);
        services.TryAddSingleton(sp => new EscrowTokens(sp.GetRequiredService<IOptions<TokenOptions>>().Value.Secrets));
        services.AddEscrowOptions<ReconciliationOptions, ReconciliationOptionsValidator>(configuration, ReconciliationOptions.Section);
        services.AddEscrowOptions<CardTestingOptions, CardTestingOptionsValidator>(configuration, CardTestingOptions.Section);
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
        services.AddEscrowOptions<RetentionOptions, RetentionOptionsValidator>(configuration, RetentionOptions.Section);
        services.AddEscrowTelemetry(configuration);
        services.AddHostedService<ReminderScheduler>();
        services.AddEscrowOptions<MonitorOptions, MonitorOptionsValidator>(configuration, MonitorOptions.Section);
        services.AddEscrowOptions<AlertOptions, AlertOptionsValidator>(configuration, AlertOptions.Section);
        services.AddHttpClient(AlertDeliveryService.HttpClientName, http => http.Timeout = TimeSpan.FromSeconds(10));
        services.AddHostedService<AlertDeliveryService>();
        return services;
    }

    /// <summary>Binds a section, checks it with its validator when the host starts, and refuses to start if it is wrong.</summary>
    public static OptionsBuilder<TOptions> AddEscrowOptions<TOptions, TValidator>(this IServiceCollection services, IConfiguration configuration, string section)
        where TOptions : class
        where TValidator : class, IValidateOptions<TOptions>
    {
        services.AddSingleton<IValidateOptions<TOptions>, TValidator>();
        return services.AddOptions<TOptions>().Bind(configuration.GetSection(section)).ValidateOnStart();
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

        var options = SiloOptions.Read(configuration.GetSection(SiloOptions.Section));
        if (options.IsAdoNetCluster)
        {
            if (string.IsNullOrWhiteSpace(connectionString))
            {
                throw new OptionsValidationException(SiloOptions.Section, typeof(ClusterOptions),
                    ["Silo:Clustering=AdoNet needs ConnectionStrings:Escrow (the cluster's membership lives in PostgreSQL)."]);
            }
            silo.UseAdoNetClustering(o =>
            {
                o.Invariant = "Npgsql";
                o.ConnectionString = connectionString;
            });
            silo.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = options.ClusterId;
                o.ServiceId = options.ServiceId;
            });
            silo.UseClusterEndpoints(options);
        }
        else
        {
            silo.UseLocalhostClustering(
                siloPort: options.SiloPort,
                gatewayPort: options.GatewayPort,
                serviceId: options.ServiceId,
                clusterId: options.ClusterId);
        }
        silo.UseClusterTls(options);

        silo.Configure<ReminderOptions>(o =>
        {
            o.MinimumReminderPeriod = options.ReminderMinimumPeriod;
            o.RefreshReminderListPeriod = options.ReminderRefreshPeriod;
            o.ReminderLoadingWindow = TimeSpan.FromMinutes(10) > o.RefreshReminderListPeriod ? TimeSpan.FromMinutes(10) : o.RefreshReminderListPeriod;
        });
        // An escrow sits idle for hours between its events (hold, warnings, deadline, reply): its activation goes after
        // two idle minutes rather than Orleans' 15 (the least allowed is just over the 1-minute collection quantum), so
        // open escrows cost rows, not memory and per-activation runtime work: every second the dashboard collects
        // Orleans' metrics, and two of Orleans' gauges walk every activation and every grain-directory cache entry.
        // Stripe's echoes of a new hold, and a reply within two minutes, still find the activation; a reminder tick
        // hours later reads the state again either way.
        silo.Configure<GrainCollectionOptions>(o =>
            o.ClassSpecificCollectionAge[typeof(EscrowGrain).FullName!] = options.EscrowCollectionAge);
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
