namespace Escrow.Grains;

// Deciding a command and carrying out its outbox, each effect after the state that decided it is durable.
public sealed partial class EscrowGrain
{
    /// <param name="stripeEventId">The Stripe event that asks for this change, if one does: kept with the change.</param>
    /// <param name="audit">Who asked with a key: an accepted change carries its audit row in the same write.</param>
    private async Task<EscrowResult> DecideAndRunAsync(EscrowCommand command, string? stripeEventId = null, AuditRequest? audit = null)
    {
        await LoadAsync();
        var decision = _machine.Decide(state.State, command, Now);
        if (!decision.Accepted)
        {
            LogRejected(Id, command.Name, decision.Rejection!.Code);
            if (EscrowMachine.AlertOnRefusal(state.State, command, decision.Rejection!) is { } alert
                && _machine.Decide(state.State, alert, Now) is { Accepted: true } alerted)
            {
                // The refusal changes nothing; the alert it calls for is the escrow's own, written and raised like any other.
                Stage(alerted.State);
                await RunAsync();
            }
            return Rejected(decision.Rejection!);
        }
        if (stripeEventId is not null && await store.IsWebhookProcessedAsync(WebhookProviders.Stripe, stripeEventId))
        {
            return Rejected(Rejection.DuplicateEvent);
        }
        var next = stripeEventId is null ? decision.State : decision.State.WithApplied(stripeEventId);
        Stage(audit is null ? next : EscrowAudit.Add(next, audit, Now));
        var writesBefore = _writes;
        try
        {
            await RunAsync();
        }
        catch (Exception e) when (_writes > writesBefore && TransientFailure.Is(e))
        {
            // The decision is durable (a write after it succeeded) and the work it started is re-driven from the
            // stored outbox by the reminder: the request was accepted, so it is answered as accepted rather than with
            // an error whose retry would find the decision made and be refused (a reply's retry: already_replied).
            LogFailedAfterDecision(e, Id, command.Name);
            return new EscrowResult(EscrowViews.From(_durable), null);
        }
        return Ok();
    }

    /// <summary>
    /// Performs the outbox in order, deciding each result as it comes. The state is written before any effect whose
    /// deciding state is not yet durable (every decision staged until then shares that one write), and once at the
    /// end of the run if anything changed that must be written (a sent e-mail the log records, of an escrow that
    /// still has a due time, waits for the next write). A crash re-drives from the last written state, and every
    /// effect is idempotent (deterministic Stripe keys; e-mails checked in the log and, when unsure, at Postmark).
    /// </summary>
    /// <param name="deferEmails">
    /// The caller waits only for the decision and its money movement to be durable (a new escrow's hold): e-mails
    /// the e-mail log records, the ledger and the reminder's move are left to a message this grain sends itself,
    /// handled right after the answer.
    /// </param>
    private async Task RunAsync(bool deferEmails = false)
    {
        var deferred = false;
        try
        {
            for (var pass = 0; pass < OutboxPassesMax; pass++)
            {
                var now = Now;
                bool Runnable(PendingEffect e) => (e.NotBefore is null || e.NotBefore <= now) && Disputes.MayRun(state.State, e);
                var effect = state.State.Outbox.FirstOrDefault(e => Runnable(e) && !(deferEmails && EscrowEffects.IsLoggedEmail(e)));
                if (effect is null)
                {
                    deferred = deferEmails && state.State.Outbox.Any(e => Runnable(e) && EscrowEffects.IsLoggedEmail(e));
                    break;
                }
                // The one rule for every effect, e-mails included: it runs only once the state that decided it is
                // durable. An effect that is in the stored outbox was decided by a written state; one that is not was
                // decided in memory, and the write (of every decision staged so far, in one WriteStateAsync) comes
                // first. So a crash can lose a decision only together with everything it would have done, and a stale
                // duplicate activation fails its write before it reaches Stripe or Postmark. The recipient reads our
                // durable state to know whether we still wait for payouts: it must see the latest.
                if (!_durableEffects.Contains(effect.Id) || effect.Kind == EffectKind.AwaitPayoutSetup)
                {
                    await FlushAsync();
                }
                var outcome = await effects.PerformAsync(state.State, effect, now, mayHaveRunBefore: effect.Id < _firstEffectIdOfActivation || effect.Attempts > 0);
                foreach (var finding in outcome.Findings.IsDefault ? [] : outcome.Findings)
                {
                    if (_machine.Decide(state.State, finding, Now) is { Accepted: true } alerted)
                    {
                        Stage(alerted.State);
                    }
                }
                var command = outcome.Command;
                var next = _machine.Decide(state.State, command, Now);
                if (outcome.RecordedOutside && next.Accepted && EscrowMachine.NextDueAt(next.State) is not null)
                {
                    // Done and durable elsewhere (the e-mail log, the slot's grains, the audit log), and the escrow still
                    // has a due time (so it keeps a reminder and will be written again): the completion rides on that
                    // next write. A re-drive before it finds the work done and does not repeat it. A terminal escrow's
                    // completion is written now.
                    StageUnwritten(next.State);
                    continue;
                }
                if (!next.Accepted && command is not EffectFailed)
                {
                    // A result the machine refused: the effect is tried again later, like a failed one.
                    command = new EffectFailed(effect.Id, next.Rejection!.Code, Permanent: false);
                    next = _machine.Decide(state.State, command, Now);
                }
                if (!next.Accepted)
                {
                    // The effect is in the outbox, so the machine decides its failure: this is a bug, not an outcome.
                    throw new EscrowInvariantException(Id, $"the failure of effect {effect.Id} was refused: {next.Rejection!.Code}");
                }
                if (command is EffectFailed { Permanent: false })
                {
                    EscrowTelemetry.EffectRetries.Add(1, new KeyValuePair<string, object?>("effect", effect.Kind.ToString()));
                }
                Stage(next.State);
            }
        }
        finally
        {
            await FlushAsync();
        }
        if (deferred)
        {
            // One-way and queued behind this call: it runs the rest as soon as the answer is sent. Lost with the
            // activation, it is the reminder ensured before the write that comes back for the e-mails.
            this.AsReference<IEscrowGrain>().DriveAsync().Ignore();
            return;
        }
        await SyncAsync();
        try
        {
            await ScheduleAsync();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The decision is durable and a reminder early enough for its work was ensured before the write; this
            // only moves that reminder to the exact due time, so it must not turn an accepted request into an error.
            LogScheduleFailed(e, Id);
        }
    }

    private static HashSet<int> DurableEffects(EscrowState s) => [.. s.Outbox.Select(e => e.Id)];
}
