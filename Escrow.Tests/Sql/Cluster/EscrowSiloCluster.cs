using Escrow.Tests.Sandbox;
using Microsoft.Extensions.Configuration;
using Orleans.Configuration;
using Orleans.Storage;
using Orleans.TestingHost;

namespace Escrow.Tests.Sql.Cluster;

/// <summary>
/// An in-process Orleans cluster of silos running the real escrow grains (<see cref="EscrowHosting.AddEscrowServices"/>)
/// with the ADO.NET grain storage and reminders on PostgreSQL, configured as <see cref="EscrowHosting.AddEscrow"/> does
/// (the test cluster brings its own membership, so AddEscrow's clustering is left out). Stripe and Postmark are the
/// sandboxes of a separate in-process host; time is one fake clock shared by all silos.
/// </summary>
internal sealed class EscrowSiloCluster : IAsyncDisposable
{
    private const string SandboxBase = "http://localhost";

    private EscrowSiloCluster(InProcessTestCluster cluster, SandboxTestHost sandbox, FakeTimeProvider clock)
    {
        Cluster = cluster;
        Sandbox = sandbox;
        Clock = clock;
    }

    public InProcessTestCluster Cluster { get; }

    public SandboxTestHost Sandbox { get; }

    public FakeTimeProvider Clock { get; }

    public IClusterClient Client => Cluster.Client;

    public static async Task<EscrowSiloCluster> StartAsync(string connectionString, short silos = 2)
    {
        var sandbox = await SandboxTestHost.StartAsync();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:Escrow"] = connectionString,
            ["Escrow:ReminderPeriod"] = "PT1S",
            ["Escrow:MaxReminderDueTime"] = "PT1S",
            ["Stripe:SecretKey"] = "sk_test_sandbox",
            ["Stripe:WebhookSecret"] = SandboxTestHost.WebhookSecret,
            ["Postmark:ServerToken"] = SandboxTestHost.PostmarkToken,
            ["Postmark:InboundUsername"] = "postmark-test",
            ["Postmark:InboundPassword"] = "inbound-password-for-tests",
            ["Postmark:InboundDomain"] = "reply.test",
            ["Tokens:Secrets:0"] = "token-secret-for-tests-000001",
        }).Build();

        var builder = new InProcessTestClusterBuilder(silos);
        builder.Options.ServiceId = "escrow-cluster-" + Guid.NewGuid().ToString("N")[..8];
        builder.Options.ConfigureFileLogging = false;
        builder.ConfigureSilo((_, silo) =>
        {
            silo.Services.AddEscrowServices(configuration);
            silo.AddEscrowPersistence(connectionString);
            silo.Configure<ReminderOptions>(o =>
            {
                o.MinimumReminderPeriod = TimeSpan.FromSeconds(1);
                o.RefreshReminderListPeriod = TimeSpan.FromSeconds(2);
            });
            silo.Services.AddSingleton<IExternalEndpoints>(new SandboxEndpoints());
            foreach (var name in new[] { EscrowHosting.StripeHttpClient, EscrowHosting.PostmarkHttpClient })
            {
                silo.Services.AddHttpClient(name).ConfigurePrimaryHttpMessageHandler(() => sandbox.Server.CreateHandler());
            }
            silo.Services.AddSingleton<TimeProvider>(clock);
            silo.Services.UseTimeProviderForBackgroundAreas(TimeProvider.System);
        });
        var cluster = builder.Build();
        try
        {
            await cluster.DeployAsync();
        }
        catch
        {
            await cluster.DisposeAsync();
            await sandbox.DisposeAsync();
            throw;
        }
        return new EscrowSiloCluster(cluster, sandbox, clock);
    }

    /// <summary>The silo where the grain is active now, as the management grain sees it.</summary>
    public async Task<SiloAddress?> HostOfAsync(IAddressable grain) =>
        await Client.GetGrain<IManagementGrain>(0).GetActivationAddress(grain);

    public async ValueTask DisposeAsync()
    {
        await Cluster.DisposeAsync();
        await Sandbox.DisposeAsync();
    }

    private sealed class SandboxEndpoints : IExternalEndpoints
    {
        public string? StripeApiBase => SandboxBase + "/_sandbox/stripe";

        public string PostmarkApiBase => SandboxBase + "/_sandbox/postmark";
    }
}
