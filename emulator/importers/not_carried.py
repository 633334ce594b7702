"""Object kinds the importers recognise but do not carry into a lab, each with why.

A reader for a new kind (NACLs, route tables, ...) replaces its entry here by registering itself in
`aws.READERS` or `terraform.HANDLERS`; everything still listed is reported, object by object.
"""
from __future__ import annotations

NO_ROUTES = ("a route table of the Cloud Control (awscc) provider, which this importer does not read: give "
             "describe-route-tables output (sgemu import aws --route-tables) for the routes it holds")
NO_LIST_ID = ("get-managed-prefix-list-entries output does not say which list it is: give it as "
              "--prefix-list-entries PL_ID=FILE")
NO_ENIS = "a lab instance has one interface; give `describe-instances` output for the instances"
NO_GATEWAYS = "a lab has no gateways beside its VPC router; traffic through them is not emulated"

# describe-* output: top-level key -> (what one object is, its id field, why it is not carried)
AWS_KINDS: dict[str, tuple[str, str, str]] = {
    "TransitGateways": ("transit gateway", "TransitGatewayId", NO_GATEWAYS),
    "VpcEndpoints": ("VPC endpoint", "VpcEndpointId", NO_GATEWAYS),
    "VpcPeeringConnections": ("VPC peering connection", "VpcPeeringConnectionId", "a lab is one VPC"),
    "Entries": ("prefix list entry", "Cidr", NO_LIST_ID),
}

# Terraform resource types that change what traffic passes but that a lab does not model.
TERRAFORM_TYPES: dict[str, str] = {
    **dict.fromkeys(("awscc_ec2_route_table", "awscc_ec2_subnet_route_table_association", "awscc_ec2_route"),
                    NO_ROUTES),
    **dict.fromkeys(("aws_vpc_endpoint", "aws_ec2_transit_gateway",
                     "aws_ec2_transit_gateway_vpc_attachment", "aws_vpn_gateway", "aws_vpn_connection",
                     "aws_customer_gateway", "aws_dx_gateway"), NO_GATEWAYS),
    "aws_vpc_peering_connection": "a lab is one VPC",
    **dict.fromkeys(("aws_launch_template", "aws_launch_configuration"),
                    "a template: the instances launched from it are not in the plan (import describe-instances "
                    "output once they run)"),
    "aws_network_interface": NO_ENIS,
    "aws_network_interface_sg_attachment": NO_ENIS,
    # Security groups of other services (EC2-Classic era): not VPC security groups.
    **dict.fromkeys(("aws_db_security_group", "aws_elasticache_security_group", "aws_redshift_security_group"),
                    "a DB/ElastiCache/Redshift security group of EC2-Classic, not a VPC security group"),
}


def prefix_list_reason(prefix_list: str) -> str:
    """Why a rule that references a prefix list is not carried: the output holds only its id."""
    return (f"prefix list {prefix_list} needs its CIDRs: run `aws ec2 get-managed-prefix-list-entries "
            f"--prefix-list-id {prefix_list}` and give its output as --prefix-list-entries {prefix_list}=FILE "
            "(Terraform: an aws_ec2_managed_prefix_list with its entries)")
