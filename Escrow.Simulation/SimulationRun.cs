namespace Escrow.Simulation;

public sealed record SimulationSettings
{
    public int Escrows { get; init; } = 120;
    public int Recipients { get; init; } = 8;
    public FaultRates Rates { get; init; } = new();
}

/// <summary>The outcome of one seed: what was run, what was injected, and every invariant that broke.</summary>
public sealed class SimulationResult
{
    public int Seed { get; init; }
    public int Escrows { get; set; }
    public int Steps { get; set; }
    public int FailedCalls { get; set; }
    public Dictionary<string, int> FinalStatuses { get; } = new(StringComparer.Ordinal);
    public Dictionary<FaultKind, long> Faults { get; } = [];
    public List<string> Violations { get; } = [];
    public TimeSpan Wall { get; set; }
    public TimeSpan Virtual { get; set; }
    public bool Passed => Violations.Count == 0;
}

/// <summary>
/// One seed of the simulation: builds a population of recipients and escrows from System.Random(seed), plays their
/// lives as a schedule of timed actions on a fake clock (payments, replies on time, in grace and late, duplicated and
/// delayed webhooks, account setup, operator actions, reminder ticks early, twice or never, clock jumps, breaker and
/// escrow deactivations) while the fakes inject faults, lets the system settle with faults off, then checks the
/// invariants against the fake Stripe, the store and the grain states.
/// </summary>
public sealed partial class SimulationRun
{
    private const int SettleRoundsMax = 120;
    private static readonly TimeSpan SettleStep = TimeSpan.FromMinutes(20);
    private const int SettleJumpsMax = 12;

    private readonly SimulationCluster _sim;
    private readonly int _seed;
    private readonly SimulationSettings _settings;
    private readonly Random _rng;
    private readonly SimFaults _faults;
    private readonly SimStripe _stripe;
    private readonly PriorityQueue<Func<Task>, (long, int)> _queue = new();
    private readonly List<Sender> _escrows = [];
    private readonly List<Payee> _recipients = [];
    private readonly SimulationResult _result;
    private int _authorisedSeen;
    private readonly HashSet<string> _transfersSeen = new(StringComparer.Ordinal);
    private int _seq;
    private DateTimeOffset _t0;

    private sealed class Sender
    {
        public int Index;
        public Guid Id;
        public string RecipientId = "";
        public TimeSpan Window;
        public string? PaymentMethod;
        public string RequestHash = "";
        public bool Created;
        public string? ClientSecret;
        public IEscrowGrain Grain = null!;
        // The first delivery of an e-mail reply received by the reply deadline (its receipt recorded, as the inbound
        // endpoint records it before judging), and that reply's receipt time.
        public DateTimeOffset? TimelyReplyDeliveredAt;
        public DateTimeOffset TimelyReplyReceivedAt;
    }

    private sealed class Payee
    {
        public string Id = "";
        public string? AccountId;
        public bool Enabled;
        public DateTimeOffset LastPoll;
    }

    public SimulationRun(SimulationCluster sim, int seed, SimulationSettings settings)
    {
        _sim = sim;
        _seed = seed;
        _settings = settings;
        _rng = new Random(seed);
        _faults = new SimFaults(seed, settings.Rates);
        _stripe = new SimStripe(_faults, sim.Clock);
        _result = new SimulationResult { Seed = seed };
    }

    private DateTimeOffset Now => _sim.Clock.GetUtcNow();

    private bool Chance(double p) => _rng.NextDouble() < p;

    private bool Fault(FaultKind kind)
    {
        if (_faults.Enabled && _rng.NextDouble() < _faults.Rates.Of(kind))
        {
            _faults.Count(kind);
            return true;
        }
        return false;
    }

    private TimeSpan Minutes(double min, double max) => TimeSpan.FromMinutes(min + (_rng.NextDouble() * (max - min)));

    private void At(DateTimeOffset at, Func<Task> action) => _queue.Enqueue(action, (Math.Max(at.UtcTicks, Now.UtcTicks), _seq++));

    public async Task<SimulationResult> RunAsync()
    {
        var wall = Stopwatch.StartNew();
        await ResetWorldAsync();
        _t0 = Now;
        _faults.Enabled = false;
        await SetUpRecipientsAsync();
        _faults.Enabled = true;
        PlanEscrows();
        PlanChaos();

        // The run: every action in time order; between actions the clock jumps and due reminders tick.
        while (_queue.TryDequeue(out var action, out var when))
        {
            var at = new DateTimeOffset(when.Item1, TimeSpan.Zero);
            await AdvanceToAsync(at);
            await Guarded(action);
            await AfterStepAsync();
        }

        // The outage ends: faults off, time goes on, reminders tick and webhooks are retried until nothing moves.
        _faults.Enabled = false;
        await SettleAsync();
        await CheckAsync();
        _result.Escrows = _escrows.Count(e => e.Created);
        foreach (var (kind, count) in _faults.Injected)
        {
            _result.Faults[kind] = count;
        }
        _result.Wall = wall.Elapsed;
        _result.Virtual = Now - _t0;
        await CleanUpAsync();
        return _result;
    }

    private async Task ResetWorldAsync()
    {
        await DeactivateAllAsync();
        _sim.Storage.Clear();
        _sim.Breaker.Clear();
        _sim.Storage.Faults = _faults;
        _sim.Payments.World = _stripe;
        _sim.Emails.Reset(_faults);
        _sim.Store.Reset(_faults, _sim.Clock);
        // A month apart: no breaker window, due time or daily slot of an earlier seed is still current.
        _sim.Clock.Advance(TimeSpan.FromDays(30));
        _sim.SeedsRun++;
    }

    private async Task CleanUpAsync()
    {
        foreach (var e in _escrows.Where(e => e.Created))
        {
            await RemoveRemindersAsync(e.Grain);
        }
        foreach (var r in _recipients)
        {
            await RemoveRemindersAsync(_sim.Grains.GetGrain<IRecipientGrain>(r.Id));
        }
        await DeactivateAllAsync();
    }

    private async Task RemoveRemindersAsync(IAddressable grain)
    {
        var rows = await Harness(() => _sim.Reminders.ReadRows(grain.GetGrainId()));
        foreach (var row in rows.Reminders)
        {
            await Harness(() => _sim.Reminders.RemoveRow(row.GrainId, row.ReminderName, row.ETag ?? ""));
        }
    }

    private async Task DeactivateAllAsync() =>
        await Harness(() => _sim.Grains.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero));

    private const int HarnessAttemptsMax = 10;

    /// <summary>
    /// A call the driver makes for itself (setting up, observing, checking, cleaning up), not one the service answers a
    /// user: its response timeout (the silo's 5 s, kept short for call cycles) is the loaded machine, not a fault of the
    /// seed, so it is asked again rather than ending the whole run. Faults the seed injects are not timeouts.
    /// </summary>
    private static async Task<T> Harness<T>(Func<Task<T>> call)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await call();
            }
            catch (TimeoutException) when (attempt < HarnessAttemptsMax)
            {
            }
        }
    }

    private static Task Harness(Func<Task> call) => Harness(async () =>
    {
        await call();
        return true;
    });

    // ---------------------------------------------------------------- population

    private async Task SetUpRecipientsAsync()
    {
        for (var i = 0; i < _settings.Recipients; i++)
        {
            var r = new Payee { Id = $"sim{_seed}-r{i}", LastPoll = Now };
            _recipients.Add(r);
            var grain = _sim.Grains.GetGrain<IRecipientGrain>(r.Id);
            // Recipient 0 is dear: its 24 h price is above the breaker's whole window cap, so refunds need approval.
            var price = i == 0 ? 8_000 : _rng.Next(4, 31) * 100;
            await Harness(() => grain.UpsertAsync(new RecipientProfile($"{r.Id}@example.com", $"Recipient {i}", price, "EUR", null, 10_000)));
            var setup = _rng.NextDouble();
            if (setup < 0.5)
            {
                r.AccountId = (await Harness(() => grain.CreateOnboardingLinkAsync("https://r.invalid", "https://b.invalid"))).AccountId;
                _stripe.Accounts[r.AccountId] = true;
                await Harness(() => grain.AccountUpdatedAsync(r.AccountId, true));
                r.Enabled = true;
            }
            else if (setup < 0.85)
            {
                // Onboarding started now, finished later in the run (account.updated may be late, twice, stale or lost).
                r.AccountId = (await Harness(() => grain.CreateOnboardingLinkAsync("https://r.invalid", "https://b.invalid"))).AccountId;
                At(_t0 + TimeSpan.FromHours(1 + (_rng.NextDouble() * 60)), () => FinishOnboardingAsync(r));
            }
        }
    }
}
