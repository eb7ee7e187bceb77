"""Human approval: a loan application waits for a manager, then a person decides which branch runs.

submit_application -> credit_check -> manager_review (approve/reject) -> risk_assessment
-> final_decision (a person picks: generate_contract or send_rejection) -> generate_contract -> disburse_funds

While a person has not answered, the waiting task holds no worker slot and no process: it is `deferred`,
listed by `dagrunner approvals list`, and survives scheduler restarts. Rejecting `manager_review` skips
everything after it; `final_decision` follows the option chosen.

    dagrunner dags trigger loan_approval --conf '{"applicant": "Ada", "amount": 25000}'
    dagrunner approvals list
    dagrunner tasks approve loan_approval manager_review RUN_ID --comment "income verified" --as maria
    dagrunner tasks respond loan_approval final_decision RUN_ID --option generate_contract --as maria
"""

from __future__ import annotations

from datetime import timedelta

import pendulum

from dagrunner import TriggerRule, dag, task
from dagrunner.operators import ApprovalOperator, EmptyOperator, HITLBranchOperator


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "approval"],
    params={"applicant": "Ada Lovelace", "amount": 25000},
)
def loan_approval():
    @task
    def submit_application(params=None) -> dict:
        application = {"applicant": params["applicant"], "amount": params["amount"]}
        print(f"application received: {application}")
        return application

    @task
    def credit_check(application: dict) -> int:
        score = 720 if application["amount"] < 100_000 else 610
        print(f"credit score of {application['applicant']}: {score}")
        return score

    manager_review = ApprovalOperator(
        task_id="manager_review",
        subject="Loan for {{ params.applicant }}: {{ params.amount }}",
        body="Credit score {{ ti.xcom_pull(task_ids='credit_check') }}. Approve to continue to risk assessment.",
        assigned_users=["manager"],
        execution_timeout=timedelta(days=2),
        escalate_after=timedelta(hours=8),
    )

    @task
    def risk_assessment(score: int) -> str:
        risk = "low" if score >= 700 else "high"
        print(f"risk: {risk}")
        return risk

    final_decision = HITLBranchOperator(
        task_id="final_decision",
        subject="Final decision on the loan for {{ params.applicant }}",
        body="Risk: {{ ti.xcom_pull(task_ids='risk_assessment') }}.",
        options=["generate_contract", "send_rejection"],
        assigned_users=["credit_committee"],
    )

    @task
    def generate_contract(params=None) -> str:
        contract = f"contract-{params['applicant'].replace(' ', '-').lower()}"
        print(f"contract {contract} for {params['amount']}")
        return contract

    @task
    def disburse_funds(contract: str, params=None) -> None:
        print(f"disbursed {params['amount']} under {contract}")

    send_rejection = EmptyOperator(task_id="send_rejection")
    done = EmptyOperator(task_id="done", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)

    score = credit_check(submit_application())
    score >> manager_review
    risk = risk_assessment(score)
    manager_review >> risk >> final_decision
    contract = generate_contract()
    final_decision >> [contract, send_rejection]
    disburse_funds(contract) >> done
    send_rejection >> done


loan_approval()
