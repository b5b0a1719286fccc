using Escrow.Grains.Email;
using Escrow.Grains.Payments;
using Orleans.Runtime.Hosting;
using Orleans.Storage;
using Orleans.TestingHost;

namespace Escrow.Tests.Grains;

/// <summary>
/// One in-process silo with the real grains, in-memory storage and reminders, a fake clock, and recording fakes
/// for Stripe, Postmark and the store. Tests share it and use fresh ids.
/// </summary>
public class GrainClusterFixture : IAsyncLifetime
{
    public GrainClusterFixture()
        : this(1_000, 10_000_000)
    {
    }

    /// <param name="storage">The grain storage; in memory when null.</param>
    protected GrainClusterFixture(int refundsPerWindowMax, long refundAmountPerWindowMaxMinor, IGrainStorage? storage = null)
    {
        RefundsPerWindowMax = refundsPerWindowMax;
        RefundAmountPerWindowMaxMinor = refundAmountPerWindowMaxMinor;
        _storage = storage;
    }

    private readonly IGrainStorage? _storage;

    public int RefundsPerWindowMax { get; }

    public long RefundAmountPerWindowMaxMinor { get; }

    /// <summary>The yen cap: a tenth of the euro one, so a test can reach one without the other.</summary>
    public long JpyAmountPerWindowMax => RefundAmountPerWindowMaxMinor / 10;

    public FakeTimeProvider Clock { get; } = new(new DateTimeOffset(2026, 11, 27, 9, 0, 0, TimeSpan.Zero));

    public FakePaymentGateway Payments { get; } = new();

    public RecordingEmailSender Emails { get; } = new();

    public InMemoryEscrowStore Store { get; private set; } = null!;

    public InProcessTestCluster Cluster { get; private set; } = null!;

    public IGrainFactory Grains => Cluster.Client;

    public async Task InitializeAsync()
    {
        Store = new InMemoryEscrowStore(Clock);
        var builder = new InProcessTestClusterBuilder(1);
        builder.Options.ConfigureFileLogging = false;
        builder.ConfigureSilo((_, silo) =>
        {
            if (_storage is null)
            {
                silo.AddEscrowPersistence(connectionString: null); // memory, as the service runs without a database
            }
            else
            {
                silo.UseInMemoryReminderService();
                silo.Services.AddGrainStorage(EscrowStorage.ProviderName, (_, _) => _storage);
                silo.Services.AddDatabaseExceptionSerialization();
            }
            silo.Configure<ReminderOptions>(o =>
            {
                o.MinimumReminderPeriod = TimeSpan.FromSeconds(1);
                o.RefreshReminderListPeriod = TimeSpan.FromSeconds(2);
            });
            var services = silo.Services;
            services.AddSingleton<TimeProvider>(Clock);
            services.UseTimeProviderForBackgroundAreas(TimeProvider.System);
            services.AddOptions<EscrowOptions>().Configure(o =>
            {
                o.ReminderPeriod = TimeSpan.FromSeconds(1);
                o.MaxReminderDueTime = TimeSpan.FromSeconds(1);
                o.PayoutSetupPollPeriod = TimeSpan.FromSeconds(2);
                o.Currencies = ["EUR", "JPY"];
                o.TransferRetry = new TransferRetryOptions { FirstDelay = TimeSpan.FromMinutes(1), MaxDelay = TimeSpan.FromMinutes(8), MaxAttempts = 3 };
                // Every test's escrows come from one sender address; the unpaid caps have their own tests (SlotExhaustionSecurityTests).
                o.UnpaidPerSenderMax = RecipientState.UnpaidMax;
                o.UnpaidPerRecipientMax = RecipientState.UnpaidMax;
            });
            services.AddOptions<CircuitBreakerOptions>().Configure(o =>
            {
                o.RefundsPerWindowMax = RefundsPerWindowMax;
                o.AmountPerWindowMax["EUR"] = RefundAmountPerWindowMaxMinor;
                o.AmountPerWindowMax["JPY"] = JpyAmountPerWindowMax;
                o.Window = TimeSpan.FromMinutes(10);
            });
            services.AddOptions<PostmarkOptions>().Configure(o => o.InboundDomain = "reply.test");
            services.AddSingleton<IPaymentGateway>(Payments);
            services.AddSingleton<IEmailSender>(Emails);
            services.AddSingleton<IEscrowStore>(Store);
            services.AddSingleton<OnboardingLinks>();
            services.AddSingleton(new EscrowTokens(["token-secret-for-tests-000001"]));
            services.AddSingleton<EscrowEffects>();
            services.AddSingleton<Escrow.Grains.Email.PayoutReminderMail>();
        });
        Cluster = builder.Build();
        await Cluster.DeployAsync();
    }

    public async Task DisposeAsync() => await Cluster.DisposeAsync();

    public async Task<string> NewRecipientAsync(bool payoutsEnabled = true, long basePriceMinor = 1_000, int dailyLimit = 5)
    {
        var id = "r-" + Guid.NewGuid().ToString("N")[..10];
        var recipient = Grains.GetGrain<IRecipientGrain>(id);
        await recipient.UpsertAsync(new RecipientProfile($"{id}@example.com", "Recipient", basePriceMinor, "EUR", null, dailyLimit));
        if (payoutsEnabled)
        {
            var link = await recipient.CreateOnboardingLinkAsync("https://r.invalid", "https://b.invalid");
            Payments.AccountsEnabled[link.AccountId] = true;
            await recipient.AccountUpdatedAsync(link.AccountId, true);
        }
        return id;
    }

    public async Task<(Guid Id, IEscrowGrain Grain, EscrowView View)> NewHeldEscrowAsync(string recipientId, string? paymentMethodId = "pm_card_visa")
    {
        var id = Guid.NewGuid();
        var grain = Grains.GetGrain<IEscrowGrain>(id);
        var result = await grain.CreateAsync(new CreateEscrow(recipientId, "sender@example.com", TimeSpan.FromHours(24), "Subject", "A message of some length.", paymentMethodId, "AB12"));
        Assert.True(result.Accepted, result.RejectionCode);
        return (id, grain, result.View!);
    }
}
