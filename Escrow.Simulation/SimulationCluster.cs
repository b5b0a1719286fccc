using Escrow.Grains.Email;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Orleans.Runtime.Hosting;
using Orleans.Configuration;
using Orleans.TestingHost;

namespace Escrow.Simulation;

/// <summary>
/// One in-process silo with the real grains and the simulation's fakes (Stripe, Postmark, the escrow store and the
/// grain storage, all with fault injection) and a fake clock. Reused across seeds: each seed swaps in fresh fakes
/// and starts a month after the last one, so no breaker window, reminder or escrow carries over.
/// </summary>
public sealed class SimulationCluster : IAsyncDisposable
{
    public const int RefundsPerWindowMax = 6;
    public const long RefundAmountPerWindowMaxMinor = 10_000;
    public static readonly TimeSpan BreakerWindow = TimeSpan.FromMinutes(10);

    public FakeTimeProvider Clock { get; } = new(new DateTimeOffset(2027, 1, 4, 9, 0, 0, TimeSpan.Zero));
    public SimPaymentGateway Payments { get; } = new();
    public SimEmailSender Emails { get; } = new();
    public SimEscrowStore Store { get; } = new();
    public SimGrainStorage Storage { get; } = new();
    public BreakerLedger Breaker { get; } = new();
    public InProcessTestCluster Cluster { get; private set; } = null!;
    /// <summary>
    /// The silo's own grain factory, as the API calls grains when it hosts the silo: no gateway socket and no message
    /// serialisation for each of the driver's calls.
    /// </summary>
    public IGrainFactory Grains { get; private set; } = null!;
    public SimReminderTable Reminders { get; private set; } = null!;
    public SimCallTracker Calls { get; } = new();
    public int SeedsRun { get; set; }

    public static async Task<SimulationCluster> StartAsync()
    {
        var sim = new SimulationCluster();
        var idle = new SimFaults(0, FaultRates.None);
        sim.Payments.World = new SimStripe(idle, sim.Clock);
        sim.Emails.Reset(idle);
        sim.Store.Reset(idle, sim.Clock);
        sim.Storage.Faults = idle;
        var builder = new InProcessTestClusterBuilder(1);
        builder.Options.ConfigureFileLogging = false;
        builder.ConfigureSilo((_, silo) =>
        {
            silo.UseInMemoryReminderService();
            SimReminderTable.Decorate(silo.Services, sim.Clock, table => sim.Reminders = table);
            // A call cycle between two grains (escrow -> recipient -> escrow) waits for the response timeout; keep it short.
            silo.Configure<SiloMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(5));
            silo.Configure<ReminderOptions>(o => o.MinimumReminderPeriod = TimeSpan.FromMinutes(1));
            var services = silo.Services;
            services.AddLogging(l => l.SetMinimumLevel(LogLevel.Critical));
            services.AddGrainStorage(EscrowStorage.ProviderName, (_, _) => sim.Storage);
            services.AddSingleton<TimeProvider>(new DecisionClock(sim.Clock));
            services.UseTimeProviderForBackgroundAreas(TimeProvider.System);
            services.AddOptions<EscrowOptions>().Configure(o =>
            {
                // Reminders tick on real time (a minute at the shortest), so in a run they practically never fire by
                // themselves: the driver plays the ticks (on time, early, twice or never) from the reminder table.
                o.ReminderPeriod = TimeSpan.FromMinutes(1);
                o.MaxReminderDueTime = null;
                o.TransferRetry = new TransferRetryOptions { FirstDelay = TimeSpan.FromMinutes(1), MaxDelay = TimeSpan.FromMinutes(8), MaxAttempts = 4 };
            });
            services.AddOptions<CircuitBreakerOptions>().Configure(o =>
            {
                o.RefundsPerWindowMax = RefundsPerWindowMax;
                o.RefundAmountPerWindowMaxMinor = RefundAmountPerWindowMaxMinor;
                o.Window = BreakerWindow;
            });
            services.AddOptions<PostmarkOptions>().Configure(o => o.InboundDomain = "reply.test");
            services.AddSingleton<IPaymentGateway>(sim.Payments);
            services.AddSingleton<IEmailSender>(sim.Emails);
            services.AddSingleton<IEscrowStore>(sim.Store);
            services.AddSingleton<OnboardingLinks>();
            services.AddSingleton(new EscrowTokens(["token-secret-for-tests-000001"]));
            services.AddSingleton<EscrowEffects>();
            services.AddSingleton<Escrow.Grains.Email.PayoutReminderMail>();
            silo.AddOutgoingGrainCallFilter(new SimCrashAfterGrainCall(sim));
            silo.AddIncomingGrainCallFilter(new SimBreakerObserver(sim.Breaker));
            silo.AddIncomingGrainCallFilter(sim.Calls);
        });
        builder.ConfigureClient(client => client.Configure<ClientMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(10)));
        sim.Cluster = builder.Build();
        await sim.Cluster.DeployAsync();
        var silo = sim.Cluster.Silos[0].ServiceProvider;
        _ = silo.GetRequiredService<IReminderTable>();
        sim.Grains = silo.GetRequiredService<IGrainFactory>();
        sim.Payments.Contexts = silo.GetRequiredService<IGrainContextAccessor>();
        sim.Emails.Contexts = sim.Payments.Contexts;
        sim.Emails.Storage = sim.Storage;
        sim.Storage.Breaker = sim.Breaker;
        sim.Store.Contexts = sim.Payments.Contexts;
        return sim;
    }

    public async ValueTask DisposeAsync() => await Cluster.DisposeAsync();
}
