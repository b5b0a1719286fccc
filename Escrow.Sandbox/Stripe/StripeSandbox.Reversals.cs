namespace Escrow.Sandbox;

/// <summary>
/// Transfer reversals and connected-account balances. Stripe reverses a separate-charges transfer only when the
/// destination account's balance covers the reversal; the sandbox keeps each account's balance as what it was
/// transferred, less what was reversed and what it paid out to its bank.
/// </summary>
public sealed partial class StripeSandbox
{
    /// <summary>The account's Stripe balance: transfers in, less reversals, less payouts.</summary>
    private long BalanceOf(string accountId) =>
        _transfers.Values.Where(t => t.Destination == accountId).Sum(t => t.Amount - t.AmountReversed)
        - (_accounts.TryGetValue(accountId, out var account) ? account.PaidOut : 0);

    /// <summary>The account pays its whole balance out to its bank (Stripe's automatic payouts): a reversal then finds nothing to take back.</summary>
    public SandboxAccount? PayOutBalance(string accountId)
    {
        lock (_gate)
        {
            if (!_accounts.TryGetValue(accountId, out var account))
            {
                return null;
            }

            account = account with { PaidOut = account.PaidOut + Math.Max(0, BalanceOf(accountId)) };
            _accounts[accountId] = account;
            return account;
        }
    }

    /// <summary>The connected account's balance as Stripe would report it.</summary>
    public long AccountBalance(string accountId)
    {
        lock (_gate)
        {
            return BalanceOf(accountId);
        }
    }

    internal StripeResponse CreateTransferReversal(string transferId, StripeForm form, string? key)
    {
        if (!_transfers.TryGetValue(transferId, out var transfer))
        {
            throw StripeApiException.Missing("transfer", transferId, "id");
        }

        var remaining = transfer.Amount - transfer.AmountReversed;
        var amount = form.Long("amount") ?? remaining;
        if (remaining <= 0)
        {
            throw new StripeApiException(400, "invalid_request_error", "transfer_already_reversed",
                $"Transfer {transfer.Id} has already been fully reversed.", "id");
        }

        if (amount <= 0 || amount > remaining)
        {
            throw new StripeApiException(400, "invalid_request_error", "amount_too_large",
                $"The reversal amount ({amount}) is greater than the amount left on transfer {transfer.Id} ({remaining}).", "amount");
        }

        if (BalanceOf(transfer.Destination) < amount)
        {
            throw new StripeApiException(400, "invalid_request_error", "balance_insufficient",
                $"Insufficient funds in the destination account {transfer.Destination} to reverse {amount}: a transfer_group " +
                "transfer can be reversed only when the account's balance covers the reversal.", "amount");
        }

        transfer = transfer with { AmountReversed = transfer.AmountReversed + amount };
        _transfers[transfer.Id] = transfer;
        if (transfer.SourceTransaction is { } source)
        {
            // Reversed money is back in the platform's balance: the charge can fund another transfer.
            _transferredFromCharge[source] = _transferredFromCharge.GetValueOrDefault(source) - amount;
        }

        var reversal = new SandboxTransferReversal
        {
            Id = NewId("trr"),
            Amount = amount,
            Currency = transfer.Currency,
            Transfer = transfer.Id,
            Metadata = form.Hash("metadata"),
            Created = Now(),
        };
        _transferReversals[reversal.Id] = reversal;
        AddEvent("transfer.reversed", transfer.Id, StripeJson.Of(transfer), key);
        return StripeResponse.Ok(StripeJson.Of(reversal));
    }

    internal StripeResponse ListTransferReversals(string transferId, StripeForm form)
    {
        if (!_transfers.ContainsKey(transferId))
        {
            throw StripeApiException.Missing("transfer", transferId, "id");
        }

        var limit = form.Limit();
        var matching = _transferReversals.Values.Where(r => r.Transfer == transferId).Reverse().ToList();
        matching = Page(matching, r => r.Id, form);
        return StripeResponse.Ok(StripeJson.List($"/v1/transfers/{transferId}/reversals",
            matching.Take(limit).Select(StripeJson.Of), matching.Count > limit));
    }
}
