namespace Escrow.Grains;

/// <summary>
/// The daily payout-setup reminder: one e-mail per recipient and UTC day, listing every escrow waiting for their
/// payout setup. Like an escrow's outbox effect, the reminder is stored as an intent before it is sent and marked done
/// after: a crash in between finds the intent, and Postmark's outbound search by the reminder's key says whether it
/// went, so a day's reminder is never sent twice.
/// </summary>
public sealed partial class RecipientGrain
{
    private async Task RemindPayoutSetupAsync()
    {
        var today = DateOnly.FromDateTime(clock.GetUtcNow().UtcDateTime);
        var s = state.State;
        var intent = s.PayoutReminderPending;
        var mayHaveBeenSent = intent is not null;
        if (intent is not null && intent.Day != today)
        {
            // An earlier day's reminder whose outcome was never recorded: that day is over, today's replaces it.
            intent = null;
            mayHaveBeenSent = false;
        }
        if (intent is null)
        {
            if (s.PayoutReminderDoneOn == today)
            {
                return;
            }
            intent = new PayoutReminderIntent(today, s.AwaitingPayoutSetup);
            await WriteAsync(s with { PayoutReminderPending = intent });
        }
        var key = PayoutReminderMail.Key(Id, intent.Day);
        var message = await reminderMail.ComposeAsync(Id, new RecipientContact(s.Email, s.DisplayName), intent.Escrows, key);
        string? providerId = mayHaveBeenSent ? await reminderMail.FindSentAsync(key) : null;
        var outcome = "sent";
        if (providerId is null)
        {
            try
            {
                providerId = await reminderMail.SendAsync(message);
            }
            catch (EmailSendException e) when (!e.Rejected)
            {
                // The intent stays: the next tick of the same day sends it (a later day's tick replaces it).
                await reminderMail.LogAsync(intent.Escrows, message, "failed", null, clock.GetUtcNow());
                throw;
            }
            catch (EmailSendException e)
            {
                // Postmark refuses this address for good: trying again tomorrow cannot succeed either.
                outcome = "rejected";
                LogReminderRejected(Id, e.Message);
            }
        }
        await WriteAsync(state.State with { PayoutReminderPending = null, PayoutReminderDoneOn = intent.Day });
        await reminderMail.LogAsync(intent.Escrows, message, outcome, providerId, clock.GetUtcNow());
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Recipient {RecipientId}: Postmark refused the payout-setup reminder for good: {Error}")]
    private partial void LogReminderRejected(string recipientId, string error);
}
