using Escrow.Grains;
using Escrow.Grains.Domain;
using Escrow.Grains.Payments;
using Orleans.Core.Internal;

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
public sealed class SimulationRun
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

    private void PlanEscrows()
    {
        Span<int> windows = [24, 48, 72];
        for (var i = 0; i < _settings.Escrows; i++)
        {
            var bytes = new byte[16];
            _rng.NextBytes(bytes);
            var e = new Sender
            {
                Index = i,
                Id = new Guid(bytes),
                RecipientId = _recipients[_rng.Next(_recipients.Count)].Id,
                Window = TimeSpan.FromHours(windows[_rng.Next(3)]),
                RequestHash = Convert.ToHexString(bytes.AsSpan(0, 8)),
            };
            e.Grain = _sim.Grains.GetGrain<IEscrowGrain>(e.Id);
            var p = _rng.NextDouble();
            e.PaymentMethod = p < 0.75 ? "pm_card_visa" : p < 0.95 ? null : "pm_card_chargeDeclined";
            _escrows.Add(e);
            var createAt = _t0 + Minutes(0, 180);
            At(createAt, () => CreateAsync(e, attempt: 0));
            var deadline = createAt + e.Window;
            var graceEnd = deadline + TimeSpan.FromMinutes(15);

            if (e.PaymentMethod is null)
            {
                var q = _rng.NextDouble();
                if (q < 0.75)
                {
                    At(createAt + Minutes(1, 90), () => ConfirmAsync(e));
                }
                else if (q < 0.85)
                {
                    At(createAt + Minutes(1, 50), () => DeliverAsync(e, new PaymentEvent(PaymentEventKind.Failed, _stripe.IntentOf(e.Id)?.Id ?? "pi_unknown", 0, null, "card_declined"), "payment_failed"));
                }
            }

            var r = _rng.NextDouble();
            DateTimeOffset? replyAt = r switch
            {
                < 0.40 => createAt + TimeSpan.FromTicks((long)(_rng.NextDouble() * e.Window.Ticks)),
                < 0.55 => deadline + Minutes(0, 15),
                < 0.65 => graceEnd + Minutes(1, 180),
                _ => null,
            };
            if (replyAt is { } at)
            {
                PlanReply(e, at);
            }
            var randomDispute = Chance(0.03);
            if (randomDispute)
            {
                var disputeAt = createAt + TimeSpan.FromHours(_rng.NextDouble() * 80);
                At(disputeAt, () => DeliverAsync(e, new PaymentEvent(PaymentEventKind.DisputeOpened, $"dp_{e.Index}", 0, null, null), "dispute"));
                if (Chance(0.7))
                {
                    At(disputeAt + TimeSpan.FromHours(_rng.NextDouble() * 20), () => OperateAsync(e, OperatorActionKind.ResolveDispute));
                }
            }
            if (Chance(0.02))
            {
                At(createAt + TimeSpan.FromHours(_rng.NextDouble() * 80), () => ReverseTransferAsync(e));
            }
            if (!randomDispute && Chance(_faults.Rates.DisputeAfterRelease))
            {
                At(graceEnd + Minutes(30, 600), () => DisputeAfterReleaseAsync(e));
            }
        }
    }

    /// <summary>
    /// A chargeback on a released escrow, as Stripe sends it: charge.dispute.created, then, hours later,
    /// charge.dispute.closed won or lost. While it is open Stripe refuses to refund the charge; once lost, the money
    /// is already back with the cardholder.
    /// </summary>
    private Task DisputeAfterReleaseAsync(Sender e)
    {
        var s = e.Created ? _sim.Storage.Get<EscrowState>("escrow", e.Grain.GetGrainId()) : null;
        var pi = _stripe.IntentOf(e.Id);
        if (!_faults.Enabled || s is not { Status: EscrowStatus.Released, DisputeId: null } || pi is null)
        {
            return Task.CompletedTask;
        }
        lock (_stripe.Gate)
        {
            if (!_stripe.Disputes.TryAdd(pi.Id, "open"))
            {
                return Task.CompletedTask;
            }
        }
        _faults.Count(FaultKind.DisputeAfterRelease);
        var dispute = $"dp_r{e.Index}";
        var won = Chance(0.5);
        At(Now + Minutes(60, 1440), () =>
        {
            lock (_stripe.Gate)
            {
                if (won)
                {
                    _stripe.Disputes.Remove(pi.Id);
                }
                else
                {
                    _stripe.Disputes[pi.Id] = "lost";
                }
            }
            return DeliverAsync(e, new PaymentEvent(PaymentEventKind.DisputeClosed, dispute, 0, null, won ? "won" : "lost"), "dispute_closed");
        });
        return DeliverAsync(e, new PaymentEvent(PaymentEventKind.DisputeOpened, dispute, 0, null, null), "dispute");
    }

    private void PlanReply(Sender e, DateTimeOffset receivedAt)
    {
        var deliverAt = Fault(FaultKind.DelayedEvent) ? receivedAt + Minutes(1, 60) : receivedAt;
        At(deliverAt, () => ReplyAsync(e, receivedAt, "email"));
        if (Fault(FaultKind.DuplicateEvent))
        {
            At(deliverAt + Minutes(0, 90), () => ReplyAsync(e, receivedAt + Minutes(0, 5), "platform"));
        }
    }

    private void PlanChaos()
    {
        var end = _t0 + TimeSpan.FromHours(80);
        // Operators: act now and then on a random escrow with a random action (most are refused by the machine).
        for (var i = 0; i < _settings.Escrows / 8; i++)
        {
            var e = _escrows[_rng.Next(_escrows.Count)];
            var kind = (OperatorActionKind)_rng.Next(5);
            At(_t0 + TimeSpan.FromTicks((long)(_rng.NextDouble() * (end - _t0).Ticks)), () => OperateAsync(e, kind));
        }
        // Reminder sweeps: the clock moves in small steps, sometimes in a big jump.
        for (var t = _t0 + Minutes(1, 20); t < end;)
        {
            At(t, () => Task.CompletedTask);
            t += Fault(FaultKind.ClockJump) ? Minutes(60, 360) : Minutes(2, 30);
        }
    }

    // ---------------------------------------------------------------- actions

    private async Task Guarded(Func<Task> action)
    {
        try
        {
            await action();
        }
        catch (Exception ex) when (ex.Message.Contains("broke an invariant", StringComparison.Ordinal))
        {
            Violation($"a grain refused to break an invariant: {ex.Message}");
        }
        catch (Exception)
        {
            // A fault surfaced to the caller (an API call would answer 5xx): callers retry on their own schedule.
            _result.FailedCalls++;
        }
        _result.Steps++;
    }

    private async Task CreateAsync(Sender e, int attempt)
    {
        var request = new CreateEscrow(e.RecipientId, $"sender{e.Index}@example.com", e.Window, "Subject", $"Message {e.Index} of seed {_seed}.", e.PaymentMethod, e.RequestHash);
        try
        {
            var result = await e.Grain.CreateAsync(request);
            e.Created = true;
            e.ClientSecret = result.View?.ClientSecret ?? e.ClientSecret;
            if (Fault(FaultKind.DuplicateEvent))
            {
                // The sender's browser retries with the same Idempotency-Key.
                At(Now + Minutes(0, 10), () => CreateAsync(e, attempt + 1));
            }
        }
        catch (Exception) when (attempt < 5)
        {
            e.Created = true;
            _result.FailedCalls++;
            // The sender retries with the same Idempotency-Key, or gives up.
            if (Chance(0.5))
            {
                At(Now + Minutes(0, 30), () => CreateAsync(e, attempt + 1));
            }
        }
    }

    private async Task ConfirmAsync(Sender e)
    {
        if (e.ClientSecret is null)
        {
            // The sender never got the client secret (the create answer was lost): it asks for the escrow again.
            try
            {
                e.ClientSecret = (await e.Grain.GetAsync())?.ClientSecret;
            }
            catch (Exception)
            {
                _result.FailedCalls++;
            }
            if (e.ClientSecret is null)
            {
                return;
            }
        }
        lock (_stripe.Gate)
        {
            var pi = _stripe.PaymentIntents.Values.FirstOrDefault(p => p.Id + "_secret" == e.ClientSecret);
            if (pi is null || pi.Status != "requires_payment_method")
            {
                return;
            }
            pi.Status = "requires_capture";
            _stripe.Authorised.Add(pi);
        }
    }

    /// <summary>A Stripe event for the escrow: delivered, retried while the handler fails, maybe twice and late.</summary>
    private Task DeliverAsync(Sender e, PaymentEvent evt, string what, int attempt = 0)
    {
        ScheduleDelivery(e, evt, what, Now, attempt);
        return Task.CompletedTask;
    }

    private void ScheduleDelivery(Sender e, PaymentEvent evt, string what, DateTimeOffset from, int attempt)
    {
        var at = from + (Fault(FaultKind.DelayedEvent) ? Minutes(1, 180) : Minutes(0, 2));
        At(at, () => HandleEventAsync(e, evt, what, attempt));
        if (attempt == 0 && Fault(FaultKind.DuplicateEvent))
        {
            At(at + Minutes(0, 240), () => HandleEventAsync(e, evt, what, attempt));
        }
    }

    private async Task HandleEventAsync(Sender e, PaymentEvent evt, string what, int attempt)
    {
        try
        {
            await e.Grain.HandlePaymentEventAsync(evt);
        }
        catch (Exception ex) when (!ex.Message.Contains("broke an invariant", StringComparison.Ordinal))
        {
            _result.FailedCalls++;
            if (attempt < 12)
            {
                // The webhook answered 5xx: Stripe delivers again later.
                At(Now + Minutes(1, 60), () => HandleEventAsync(e, evt, what, attempt + 1));
            }
        }
    }

    private async Task ReplyAsync(Sender e, DateTimeOffset receivedAt, string source, int attempt = 0)
    {
        var messageId = $"sim-{_seed}-{e.Index}-{receivedAt.UtcTicks}";
        try
        {
            if (source == "email" && attempt == 0)
            {
                // What the inbound endpoint does first: the receipt is durable before the reply is judged.
                await _sim.Store.Inner.RecordInboundReceiptAsync(new InboundMessageRecord(messageId, e.Id, "recipient@example.com", "Re", receivedAt, false, false, InboundMessageRecord.Pending, ""));
                if (e.Created && receivedAt <= Now && _sim.Storage.Get<EscrowState>("escrow", e.Grain.GetGrainId()) is { Status: EscrowStatus.Held } held
                    && Now < held.ReplyDeadline && receivedAt <= held.ReplyDeadline)
                {
                    e.TimelyReplyDeliveredAt ??= Now;
                    e.TimelyReplyReceivedAt = receivedAt;
                }
            }
            var result = await e.Grain.AcceptReplyAsync(new ReplyReceived(receivedAt, source, source == "email" ? "Here is my answer." : null));
            if (source == "email")
            {
                await _sim.Store.Inner.RecordInboundMessageAsync(new InboundMessageRecord(messageId, e.Id, "recipient@example.com", "Re", receivedAt, true, false, result.RejectionCode, ""));
            }
        }
        catch (Exception ex) when (!ex.Message.Contains("broke an invariant", StringComparison.Ordinal))
        {
            _result.FailedCalls++;
            if (attempt < 8)
            {
                // Postmark retries an inbound webhook that failed; the platform UI's user clicks again.
                At(Now + Minutes(1, 30), () => ReplyAsync(e, receivedAt, source, attempt + 1));
            }
        }
    }

    private async Task OperateAsync(Sender e, OperatorActionKind kind)
    {
        if (!e.Created)
        {
            return;
        }
        await e.Grain.OperateAsync(new OperatorAction(kind, "simulation", "sim-admin"));
    }

    private async Task ReverseTransferAsync(Sender e)
    {
        var transfer = _stripe.TransfersOf(e.Id).FirstOrDefault();
        if (transfer is not null)
        {
            await DeliverAsync(e, new PaymentEvent(PaymentEventKind.TransferReversed, transfer.Id, transfer.AmountMinor, "eur", null), "transfer_reversed");
        }
    }

    private Task FinishOnboardingAsync(Payee r)
    {
        lock (_stripe.Gate)
        {
            _stripe.Accounts[r.AccountId!] = true;
        }
        r.Enabled = true;
        if (Chance(0.85))
        {
            var at = Now + (Fault(FaultKind.DelayedEvent) ? Minutes(1, 600) : Minutes(0, 2));
            At(at, () => AccountUpdatedAsync(r, true, 0));
            if (Fault(FaultKind.DuplicateEvent))
            {
                At(at + Minutes(0, 120), () => AccountUpdatedAsync(r, true, 0));
            }
        }
        if (Fault(FaultKind.StaleAccountEvent))
        {
            // An older account.updated (payouts not yet enabled) arrives after the newer one.
            At(Now + Minutes(1, 300), () => AccountUpdatedAsync(r, false, 0));
        }
        return Task.CompletedTask;
    }

    private async Task AccountUpdatedAsync(Payee r, bool enabled, int attempt)
    {
        try
        {
            await _sim.Grains.GetGrain<IRecipientGrain>(r.Id).AccountUpdatedAsync(r.AccountId!, enabled);
        }
        catch (Exception ex) when (attempt < 12 && !ex.Message.Contains("broke an invariant", StringComparison.Ordinal))
        {
            _result.FailedCalls++;
            At(Now + Minutes(1, 60), () => AccountUpdatedAsync(r, enabled, attempt + 1));
        }
    }

    // ---------------------------------------------------------------- time

    private async Task AdvanceToAsync(DateTimeOffset at)
    {
        if (at > Now)
        {
            _sim.Clock.AdjustTime(at);
        }
        await Task.CompletedTask;
    }

    /// <summary>After each action: new authorisations become webhooks, due reminders tick, chaos happens.</summary>
    private async Task AfterStepAsync()
    {
        List<SimPaymentIntent> fresh;
        List<(Guid EscrowId, TransferInfo Transfer)> transfers;
        lock (_stripe.Gate)
        {
            fresh = _stripe.Authorised.Skip(_authorisedSeen).ToList();
            _authorisedSeen = _stripe.Authorised.Count;
            transfers = [.. _stripe.Transfers.SelectMany(kv => kv.Value.Select(t => (kv.Key, t))).Where(x => _transfersSeen.Add(x.Item2.Id))];
        }
        foreach (var (escrowId, t) in transfers)
        {
            // Stripe's transfer.created, for every transfer made, including those whose answer the caller lost.
            var e = _escrows.FirstOrDefault(x => x.Id == escrowId);
            if (e is not null)
            {
                ScheduleDelivery(e, new PaymentEvent(PaymentEventKind.TransferCreated, t.Id, t.AmountMinor, t.Currency.ToLowerInvariant(), null, t.DestinationAccountId), "transfer_created", Now, 0);
            }
        }
        foreach (var pi in fresh)
        {
            var e = _escrows.FirstOrDefault(x => x.Id == pi.EscrowId);
            if (e is not null)
            {
                ScheduleDelivery(e, new PaymentEvent(PaymentEventKind.Authorised, pi.Id, pi.AmountMinor, pi.Currency.ToLowerInvariant(), null), "authorised", Now, 0);
            }
        }
        await TickDueAsync(settling: false);
        if (Fault(FaultKind.BreakerDeactivated))
        {
            await Harness(() => _sim.Grains.GetGrain<ICircuitBreakerGrain>(0).AsReference<IGrainManagementExtension>().DeactivateOnIdle().AsTask());
        }
        if (_escrows.Count > 0 && Fault(FaultKind.EscrowDeactivated))
        {
            var e = _escrows[_rng.Next(_escrows.Count)];
            await Harness(() => e.Grain.AsReference<IGrainManagementExtension>().DeactivateOnIdle().AsTask());
        }
        if (_escrows.Count > 0 && Fault(FaultKind.EarlyTick))
        {
            // A reminder tick that comes early (or for nothing): the grain must compare the clock with its due times.
            var e = _escrows[_rng.Next(_escrows.Count)];
            if (e.Created)
            {
                await Guarded(() => e.Grain.WakeAsync());
            }
        }
        if (_escrows.Count > 0 && Fault(FaultKind.DuplicatePayoutsEnabled))
        {
            var e = _escrows[_rng.Next(_escrows.Count)];
            if (e.Created)
            {
                await Guarded(() => e.Grain.RecipientPayoutsEnabledAsync());
            }
        }
        await ObserveBreakerAsync();
    }

    private async Task ObserveBreakerAsync()
    {
        var view = await Harness(() => _sim.Grains.GetGrain<ICircuitBreakerGrain>(0).GetAsync());
        if (view.RefundsInWindow > SimulationCluster.RefundsPerWindowMax || view.RefundAmountInWindowMinor > SimulationCluster.RefundAmountPerWindowMaxMinor)
        {
            Violation($"the breaker counts {view.RefundsInWindow} refunds ({view.RefundAmountInWindowMinor}) in its window, over the caps");
        }
    }

    /// <summary>
    /// Plays the reminder service: an escrow whose stored due time has come gets a tick, but only if it has a reminder
    /// registered (a reminder that was never registered never ticks) and, until the outage ends, not while that
    /// reminder is known to fire later: an activation that finished work its stored state still lists (sent e-mails
    /// whose completion rides on the next write) moves its reminder on, and a tick by the stored due time would find
    /// nothing to do. While settling, every escrow with stored work left and a reminder is ticked. Ticks can be missed
    /// or doubled.
    /// </summary>
    private async Task<int> TickDueAsync(bool settling)
    {
        var ticked = 0;
        var now = Now;
        foreach (var e in _escrows)
        {
            if (!e.Created)
            {
                continue;
            }
            var s = _sim.Storage.Get<EscrowState>("escrow", e.Grain.GetGrainId());
            if (s is null || !s.Exists)
            {
                continue;
            }
            var due = EscrowMachine.NextDueAt(s);
            var unsynced = settling && await Unsynced(s);
            if ((due is null || due > now) && !unsynced)
            {
                continue;
            }
            if (!settling && _sim.Reminders.FirstFiresAt(e.Grain.GetGrainId()) is { } firesAt && firesAt > now)
            {
                continue;
            }
            if (!await HasReminderAsync(e.Grain))
            {
                continue;
            }
            if (Fault(FaultKind.MissedTick))
            {
                continue;
            }
            await Guarded(() => e.Grain.WakeAsync());
            ticked++;
            if (Fault(FaultKind.DuplicateTick))
            {
                await Guarded(() => e.Grain.WakeAsync());
            }
        }
        foreach (var r in _recipients)
        {
            // The payout-setup poll reminder (daily).
            if (now - r.LastPoll < TimeSpan.FromDays(1) && !settling)
            {
                continue;
            }
            r.LastPoll = now;
            var grain = _sim.Grains.GetGrain<IRecipientGrain>(r.Id);
            if (await HasReminderAsync(grain) && !Fault(FaultKind.MissedTick))
            {
                await Guarded(async () => await grain.RefreshAccountAsync());
            }
        }
        return ticked;
    }

    private async Task<bool> Unsynced(EscrowState s)
    {
        var projection = await _sim.Store.Inner.GetEscrowAsync(s.Id);
        return projection is null || projection.Version != s.History.Length;
    }

    private async Task<bool> HasReminderAsync(IAddressable grain) =>
        (await Harness(() => _sim.Reminders.ReadRows(grain.GetGrainId()))).Reminders.Count > 0;

    private async Task SettleAsync()
    {
        var quiet = 0;
        var jumps = 0;
        for (var round = 0; round < SettleRoundsMax && quiet < 3; round++)
        {
            var before = Snapshot();
            _sim.Clock.Advance(SettleStep);
            var pending = _queue.Count;
            while (_queue.TryPeek(out _, out var when) && when.Item1 <= Now.UtcTicks)
            {
                await Guarded(_queue.Dequeue());
            }
            var ticked = await TickDueAsync(settling: true);
            await AfterStepAsync();
            // Quiet only once every turn started so far has ended (their writes and ledger syncs are in the snapshot).
            await _sim.Calls.WhenIdleAsync();
            quiet = Snapshot() == before && ticked == 0 && pending == 0 ? quiet + 1 : 0;
            if (quiet >= 3 && jumps < SettleJumpsMax && NextDueOfUnfinished() is { } due && due > Now)
            {
                // Quiet, but an unfinished escrow has a timer that will move it (a transfer retry, a payout check):
                // go there, as the reminder service would.
                _sim.Clock.Advance(due - Now);
                quiet = 0;
                jumps++;
            }
        }
    }

    /// <summary>
    /// The next timer of an escrow that is not finished, leaving out those that wait for a payee who never sets up
    /// (their payout check repeats forever) and those under an open dispute (nothing moves until an operator acts).
    /// </summary>
    private DateTimeOffset? NextDueOfUnfinished()
    {
        DateTimeOffset? next = null;
        foreach (var e in _escrows.Where(e => e.Created))
        {
            var s = _sim.Storage.Get<EscrowState>("escrow", e.Grain.GetGrainId());
            if (s is null || !s.Exists || s.IsTerminal || s.DisputeOpen || WaitingForPayee(s))
            {
                continue;
            }
            if (EscrowMachine.NextDueAt(s) is { } due && (next is null || due < next))
            {
                next = due;
            }
        }
        return next;
    }

    private bool WaitingForPayee(EscrowState s) =>
        s.Status == EscrowStatus.PendingUserSetup && !_recipients.First(r => r.Id == s.RecipientId).Enabled;

    private string Snapshot() => string.Join(",", _escrows.Where(e => e.Created).Select(e =>
    {
        var s = _sim.Storage.Get<EscrowState>("escrow", e.Grain.GetGrainId());
        return s is null ? "-" : $"{(int)s.Status}:{s.Outbox.Length}:{s.History.Length}";
    }));

    private void Violation(string what) => _result.Violations.Add(what);

    // ---------------------------------------------------------------- invariants

    private async Task CheckAsync()
    {
        var alerts = await _sim.Store.Inner.ListAlertsAsync(openOnly: true, limit: 10_000);
        var allAlerts = await _sim.Store.Inner.ListAlertsAsync(openOnly: false, limit: 10_000);
        foreach (var e in _escrows.Where(e => e.Created))
        {
            var s = _sim.Storage.Get<EscrowState>("escrow", e.Grain.GetGrainId());
            var pi = _stripe.IntentOf(e.Id);
            var transfers = _stripe.TransfersOf(e.Id);
            var tag = $"escrow #{e.Index} {e.Id}";
            if (s is null || !s.Exists)
            {
                if (pi is not null)
                {
                    Violation($"{tag}: Stripe has {pi.Id} but the escrow was never stored");
                }
                continue;
            }
            var status = s.Status.ToWire();
            _result.FinalStatuses[status] = _result.FinalStatuses.GetValueOrDefault(status) + 1;
            tag += $" ({status})";

            // Money: at most one capture and one transfer; never captured and cancelled; transfer + fee == captured.
            if (pi is not null)
            {
                if (pi.Captures > 1)
                {
                    Violation($"{tag}: captured {pi.Captures} times");
                }
                if (pi.Captures > 0 && pi.Cancels > 0)
                {
                    Violation($"{tag}: both captured and cancelled");
                }
                // A cancel Stripe refused for good leaves the authorisation for an operator (alert money_effect_rejected).
                if (s.IsTerminal && pi.Status == "requires_capture" && !s.History.Any(h => h.Event == "cancel_rejected"))
                {
                    Violation($"{tag}: terminal, but its authorisation {pi.Id} is still held; history: {string.Join(" ", s.History.Select(h => h.Event + "@" + h.At.ToString("dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture)))}; outbox [{string.Join(", ", s.Outbox.Select(x => x.Kind))}], PI {s.PaymentIntentId}");
                }
                if (pi.Captures > 0 && s.Status is EscrowStatus.Cancelled or EscrowStatus.PaymentFailed)
                {
                    Violation($"{tag}: captured, but {status}");
                }
                if (pi.Captures > 0 && s.Status == EscrowStatus.Refunded && pi.Refunds == 0)
                {
                    Violation($"{tag}: captured and refunded in the ledger, but no refund in Stripe");
                }
            }
            // Reversals: what the recipient keeps never exceeds their share (a share reversed, then transferred again
            // after a won dispute, is paid once), and a refund never leaves a transfer in place (reversal first).
            var kept = transfers.Sum(t => t.AmountMinor) - transfers.Sum(t => t.AmountReversedMinor);
            if (kept > s.Split.RecipientShare.Minor)
            {
                Violation($"{tag}: transferred minus reversed is {kept}, over the recipient's share {s.Split.RecipientShare.Minor}");
            }
            if (pi?.Refunds > 0 && transfers.Any(t => !t.Reversed))
            {
                Violation($"{tag}: refunded while transfer {transfers.First(t => !t.Reversed).Id} was not reversed: paid out twice");
            }
            // A money movement Stripe refused for good ends the effect: an alert, and the escrow waits for an operator.
            var refusal = s.History.LastOrDefault(h => h.Event is "cancel_rejected" or "refund_rejected" or "capture_rejected" or "reversal_rejected");
            if (refusal is not null)
            {
                if (!allAlerts.Any(a => a.EscrowId == e.Id && a.Kind == "money_effect_rejected"))
                {
                    Violation($"{tag}: Stripe refused a money movement for good ({refusal.Event} {refusal.Detail}) but no money_effect_rejected alert was raised");
                }
                if (s.History[^1] == refusal && !s.IsTerminal && !s.NeedsOperator)
                {
                    Violation($"{tag}: {refusal.Event} ({refusal.Detail}) is its last event, but it does not wait for an operator");
                }
            }
            // A transfer the escrow took back (a refund after release) pays nothing: the money went back to the sender.
            foreach (var r in transfers.Where(t => t.Reversed))
            {
                // Or still waiting: a refund does not run while a dispute is open (Stripe refuses to refund a disputed charge).
                // Its history names every reversal it made: a share reversed for a dispute, transferred again when the
                // dispute was won or resolved, can be reversed again by a later refund (ReversedTransferId is the last).
                var reversedByEscrow = s.ReversedTransferId == r.Id
                    || s.History.Any(h => h.Event == "share_reversed" && h.Detail?.EndsWith(" of " + r.Id, StringComparison.Ordinal) == true);
                // Or paid again: a refund refused after the reversal, then an operator's release (the share checks below
                // still ask for exactly one live transfer, and that it is the escrow's).
                var paidAgain = s.Status == EscrowStatus.Released && s.TransferId != r.Id && transfers.Any(t => t.Id == s.TransferId && !t.Reversed);
                if (!reversedByEscrow || !((s.Status == EscrowStatus.Refunded && pi?.Refunds > 0) || s.NeedsOperator || s.DisputeStatus is not null || paidAgain))
                {
                    Violation($"{tag}: transfer {r.Id} was reversed, but the escrow is {status} (reversed {s.ReversedTransferId}, {pi?.Refunds} refunds); history: {string.Join(" ", s.History.Select(h => h.Event + "@" + h.At.ToString("dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture)))}; outbox [{string.Join(", ", s.Outbox.Select(x => $"{x.Kind}@{x.NotBefore:O}"))}], dispute open {s.DisputeOpen}, last error {s.LastError}");
                }
            }
            transfers = [.. transfers.Where(t => !t.Reversed)];
            if (transfers.Count > 1)
            {
                Violation($"{tag}: {transfers.Count} transfers ({string.Join(", ", transfers.Select(t => t.Id))})");
            }
            if (transfers.Count > 0)
            {
                var t = transfers[0];
                if (pi is null || t.AmountMinor + s.Split.PlatformFee.Minor != pi.CapturedMinor)
                {
                    Violation($"{tag}: transfer {t.AmountMinor} + fee {s.Split.PlatformFee.Minor} != captured {pi?.CapturedMinor}");
                }
                if (s.Status != EscrowStatus.Released || s.TransferId != t.Id)
                {
                    Violation($"{tag}: Stripe has transfer {t.Id} but the escrow records {s.TransferId}; history: {string.Join(" ", s.History.Select(h => h.Event + "@" + h.At.ToString("dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture)))}; last error {s.LastError}; next transfer attempt {s.NextTransferAttemptAt:O}, failures {s.TransferFailures}, outbox [{string.Join(", ", s.Outbox.Select(x => $"{x.Kind}@{x.NotBefore:O}"))}], now {Now:O}, reminder {await HasReminderAsync(e.Grain)}");
                }
            }
            // A dispute may have taken the share back (Disputes:ReverseTransfer): then no transfer is left to the recipient.
            if (s.Status == EscrowStatus.Released && (transfers.Count != (s.ShareReversed && s.DisputeStatus is not null ? 0 : 1) || pi?.Status != "succeeded" || pi.Refunds > 0))
            {
                Violation($"{tag}: released without exactly one transfer from a captured, unrefunded payment");
            }
            if (s.Status == EscrowStatus.Refunded && pi is not null && pi.Status == "requires_capture")
            {
                Violation($"{tag}: refunded but the authorisation is still held");
            }

            // The ledger, the projection, the stored state and the live activation agree.
            var ledger = await _sim.Store.Inner.GetLedgerAsync(e.Id);
            var projection = await _sim.Store.Inner.GetEscrowAsync(e.Id);
            if (ledger.Count != s.History.Length || ledger.Select(l => l.Seq).Where((seq, i) => seq != i + 1).Any())
            {
                Violation($"{tag}: the ledger has {ledger.Count} rows, the history {s.History.Length} ({string.Join(" ", s.History.Select(h => h.Event + "@" + h.At.ToString("dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture)))}); outbox [{string.Join(", ", s.Outbox.Select(x => $"{x.Kind}@{x.NotBefore:O}"))}], last error {s.LastError}, now {Now:O}, reminder {await HasReminderAsync(e.Grain)}");
            }
            else if (ledger.Count > 0 && ledger[^1].Status != status)
            {
                Violation($"{tag}: the last ledger row says {ledger[^1].Status}");
            }
            if (projection is null || projection.Status != status || projection.Version != s.History.Length)
            {
                Violation($"{tag}: the projection says {projection?.Status} v{projection?.Version}, the state v{s.History.Length}");
            }
            var view = await Harness(() => e.Grain.GetAsync());
            if (view?.Status != status)
            {
                Violation($"{tag}: the activation says {view?.Status}, the stored state {status}");
            }

            // Liveness: terminal, or waiting with a reminder that will move it, or in an operator's hands (open alert).
            var due = EscrowMachine.NextDueAt(s);
            if (due is not null && !await HasReminderAsync(e.Grain))
            {
                Violation($"{tag}: work is due at {due:O} ({s.Outbox.Length} effects) but no reminder is registered");
            }
            var alerted = alerts.Any(a => a.EscrowId == e.Id);
            var waitingForPayee = WaitingForPayee(s);
            if (!s.IsTerminal && !alerted && !waitingForPayee)
            {
                var rs = _sim.Storage.Get<Escrow.Grains.RecipientState>("recipient", _sim.Grains.GetGrain<IRecipientGrain>(s.RecipientId).GetGrainId());
                Violation($"{tag}: stuck after settling (next due {due:O}, outbox [{string.Join(", ", s.Outbox.Select(x => x.Kind))}], last error {s.LastError}); recipient: payouts enabled {rs?.PayoutsEnabled}, lists it {rs?.AwaitingPayoutSetup.Contains(s.Id)}, poll reminder {await HasReminderAsync(_sim.Grains.GetGrain<IRecipientGrain>(s.RecipientId))}; history: {string.Join(" ", s.History.Select(h => h.Event + "@" + h.At.ToString("HH:mm", System.Globalization.CultureInfo.InvariantCulture)))}");
            }
            if (s.IsTerminal && s.Outbox.Any(x => x.Kind != EffectKind.RaiseAlert && x.Kind != EffectKind.SendEmail))
            {
                Violation($"{tag}: terminal with effects left: {string.Join(", ", s.Outbox.Select(x => x.Kind))}");
            }
            // A reply received by the deadline, to a held escrow nobody else decided for (an operator, a dispute, a
            // voided card), ends released, whatever crashed while it was handled.
            if (e.TimelyReplyDeliveredAt is { } delivered
                && !s.History.Any(h => h.Event is "dispute_opened" or "authorisation_voided" or "operator_refund" or "capture_rejected" or "operator_cancel")
                && (!s.History.Any(h => h.Event == "reply_accepted") || s.Status is EscrowStatus.Refunded or EscrowStatus.RefundPending))
            {
                Violation($"{tag}: a reply received at {e.TimelyReplyReceivedAt:O} (delivered {delivered:O}, reply deadline {s.ReplyDeadline:O}) did not end released; history: {string.Join(" ", s.History.Select(h => h.Event + "@" + h.At.ToString("dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture)))}");
            }
            // Every permit an escrow records was granted by the breaker (the ledger counts them per window below).
            if (s.History.Any(h => h.Event == "refund_permit_granted") && !s.RefundApproved && !_sim.Breaker.HasGranted(e.Id))
            {
                Violation($"{tag}: recorded a refund permit the breaker never granted");
            }
        }

        // A refusal is saved under its idempotency key and replayed: once the escrow has recorded it, asking again with
        // that key is a retry loop. (Before, one more request is a re-drive after the answer was lost with a write.)
        List<(string Key, List<DateTimeOffset> At)> refused;
        lock (_stripe.Gate)
        {
            refused = [.. _stripe.RefusedRequests.Select(r => (r.Key, r.Value.ToList()))];
        }
        foreach (var (key, at) in refused)
        {
            var parts = key.Split('/');
            var owner = Guid.TryParse(parts[1], out var id) ? _escrows.FirstOrDefault(x => x.Id == id && x.Created) : null;
            var state = owner is null ? null : _sim.Storage.Get<EscrowState>("escrow", owner.Grain.GetGrainId());
            var evt = (parts[2] == "reversal" ? "reversal" : parts[2]) + "_rejected";
            var recorded = state?.History.FirstOrDefault(h => h.Event == evt && h.At >= at[0]);
            if (recorded is not null && at.Count(t => t > recorded.At) > 0)
            {
                Violation($"Stripe refused {key} for good; the escrow recorded it at {recorded.At:O} and asked again {at.Count(t => t > recorded.At)} times after");
            }
        }
        // Refund permits per breaker window never exceed the caps, each counted in the window the breaker granted it in.
        foreach (var v in _sim.Breaker.Violations(SimulationCluster.BreakerWindow, SimulationCluster.RefundsPerWindowMax, SimulationCluster.RefundAmountPerWindowMaxMinor))
        {
            Violation(v);
        }
        foreach (var v in _sim.Emails.Violations)
        {
            Violation(v);
        }
        var breaker = await Harness(() => _sim.Grains.GetGrain<ICircuitBreakerGrain>(0).GetAsync());
        var tripAlerts = (await _sim.Store.Inner.ListAlertsAsync(openOnly: false, limit: 10_000)).Count(a => a.Kind == "circuit_breaker_tripped");
        // Every stored trip has its alert. (An alert may also stand for a trip whose own write then failed.)
        if (tripAlerts < breaker.Trips)
        {
            Violation($"the breaker tripped {breaker.Trips} times but raised {tripAlerts} alerts");
        }
    }
}
